# Shared settings for the local cluster scripts. Source it:  . scripts/cluster/env.sh
# Safe to source more than once and from any directory; it sets no shell options.

TRELLIS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TRELLIS_ROOT

# One pinned version of each part, everywhere.
export K8S_VERSION="v1.34.4"        # k8s.io/kubernetes; staging modules at v0.34.4
export ETCD_VERSION="v3.6.16"       # go.etcd.io/etcd/server/v3 and etcdctl/v3
export CRICTL_VERSION="v1.34.0"     # sigs.k8s.io/cri-tools (used by down.sh to tear pods down)
export PAUSE_IMAGE="registry.k8s.io/pause:3.10"  # name only: built locally from scripts/cluster/pause.c

export TRELLIS_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/trellis"
export TRELLIS_CLUSTER_DIR="${TRELLIS_CLUSTER_DIR:-$HOME/.local/state/trellis/cluster}"
export TRELLIS_LOG_DIR="$TRELLIS_CLUSTER_DIR/logs"
export TRELLIS_RUN_DIR="$TRELLIS_CLUSTER_DIR/run"
# TRELLIS_KUBECONFIG lets a caller point the project at another cluster (kind, a real one).
export KUBECONFIG="${TRELLIS_KUBECONFIG:-$TRELLIS_CLUSTER_DIR/kubeconfig}"
export CONTAINERD_ADDRESS="$TRELLIS_CLUSTER_DIR/containerd/containerd.sock"
export CONTAINERD_NAMESPACE="k8s.io"

case ":$PATH:" in
  *":$TRELLIS_ROOT/.tools/bin:"*) ;;
  *) export PATH="$TRELLIS_ROOT/.tools/bin:$PATH" ;;
esac

# Directory that holds the cached binary of one component at one version.
trellis_bin_dir() { printf '%s/bin/%s-%s\n' "$TRELLIS_CACHE" "$1" "$2"; }

# Cached path of one binary: trellis_bin NAME (version picked from the pins above).
trellis_bin() {
  case "$1" in
    etcd | etcdctl) printf '%s/%s\n' "$(trellis_bin_dir "$1" "$ETCD_VERSION")" "$1" ;;
    crictl) printf '%s/%s\n' "$(trellis_bin_dir "$1" "$CRICTL_VERSION")" "$1" ;;
    *) printf '%s/%s\n' "$(trellis_bin_dir "$1" "$K8S_VERSION")" "$1" ;;
  esac
}

# The pause image archive, keyed by the hash of its source.
trellis_pause_archive() {
  local h
  h="$(sha256sum "$TRELLIS_ROOT/scripts/cluster/pause/pause.c" | cut -c1-12)"
  printf '%s/pause.oci.tar\n' "$(trellis_bin_dir pause "$h")"
}

export TRELLIS_COMPONENTS="containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet"

# Prints the component log files; failing tests and scripts point here.
trellis_log_paths() {
  local c
  for c in $TRELLIS_COMPONENTS; do
    printf '%s\n' "$TRELLIS_LOG_DIR/$c.log"
  done
}

trellis_log() { printf '[trellis %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
trellis_die() { printf '[trellis] error: %s\n' "$*" >&2; exit 1; }
