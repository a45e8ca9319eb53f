# Shared settings for the local cluster scripts. Source it:  . scripts/cluster/env.sh
# Safe to source more than once and from any directory; it sets no shell options.

TRELLIS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TRELLIS_ROOT

# One pinned version of each part, everywhere.
export K8S_VERSION="v1.34.4"        # k8s.io/kubernetes; staging modules at v0.34.4
export ETCD_VERSION="v3.6.16"       # go.etcd.io/etcd/server/v3 and etcdctl/v3
export CRICTL_VERSION="v1.34.0"     # sigs.k8s.io/cri-tools (used by down.sh to tear pods down)
export PAUSE_IMAGE="registry.k8s.io/pause:3.10"  # name only: built locally from scripts/cluster/pause.c
# github.com/seaweedfs/seaweedfs (weed: the S3-compatible object store of the demo and the suites).
# Its release tags are not semver, so the module is pinned by its pseudo-version.
export SEAWEEDFS_VERSION="v0.0.0-20261109003541-7506e5f91cd6"
export TRELLIS_S3_PORT="${TRELLIS_S3_PORT:-18333}"
export TRELLIS_S3_BUCKET="${TRELLIS_S3_BUCKET:-trellis}"

export TRELLIS_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/trellis"
export TRELLIS_CLUSTER_DIR="${TRELLIS_CLUSTER_DIR:-$HOME/.local/state/trellis/cluster}"
export TRELLIS_LOG_DIR="$TRELLIS_CLUSTER_DIR/logs"
export TRELLIS_RUN_DIR="$TRELLIS_CLUSTER_DIR/run"
# TRELLIS_KUBECONFIG lets a caller point the project at another cluster (kind, a real one).
export KUBECONFIG="${TRELLIS_KUBECONFIG:-$TRELLIS_CLUSTER_DIR/kubeconfig}"
export CONTAINERD_NAMESPACE="k8s.io"

# Node count: what the running cluster was started with, else TRELLIS_NODES (default 1). One node
# lives on the host's own network; two or more each get a network namespace (see README.md).
trellis_nodes() {
  local f="$TRELLIS_RUN_DIR/nodes"
  if [[ -s "$f" ]]; then cat "$f"; else printf '%s\n' "${TRELLIS_NODES:-1}"; fi
}
trellis_node_name() { printf 'trellis-node-%s\n' "$1"; } # trellis_node_name INDEX (multi-node)
trellis_node_dir() { printf '%s/nodes/%s\n' "$TRELLIS_CLUSTER_DIR" "$1"; }
# containerd socket of node INDEX (0 or no argument: the single host node).
trellis_containerd_address() {
  if [[ "${1:-0}" == 0 ]]; then
    printf '%s/containerd/containerd.sock\n' "$TRELLIS_CLUSTER_DIR"
  else
    printf '%s/containerd/containerd.sock\n' "$(trellis_node_dir "$1")"
  fi
}
# Every node's containerd socket, one per line.
trellis_containerd_addresses() {
  local n i
  n="$(trellis_nodes)"
  if ((n <= 1)); then trellis_containerd_address 0; else for ((i = 1; i <= n; i++)); do trellis_containerd_address "$i"; done; fi
}
# First node's socket (the only one with one node): what ctr/crictl users get by default.
if (($(trellis_nodes) <= 1)); then
  export CONTAINERD_ADDRESS="$(trellis_containerd_address 0)"
else
  export CONTAINERD_ADDRESS="$(trellis_containerd_address 1)"
fi

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
    weed | seaweedfs) printf '%s/%s\n' "$(trellis_bin_dir weed "${SEAWEEDFS_VERSION##*-}")" weed ;;
    *) printf '%s/%s\n' "$(trellis_bin_dir "$1" "$K8S_VERSION")" "$1" ;;
  esac
}

# The pause image archive, keyed by the hash of its source.
trellis_pause_archive() {
  local h
  h="$(sha256sum "$TRELLIS_ROOT/scripts/cluster/pause/pause.c" | cut -c1-12)"
  printf '%s/pause.oci.tar\n' "$(trellis_bin_dir pause "$h")"
}

export TRELLIS_CONTROL_PLANE="etcd kube-apiserver kube-controller-manager kube-scheduler seaweedfs"
export TRELLIS_NODE_COMPONENTS="containerd kubelet kube-proxy"
# Every process of the cluster (per node "<component>-<index>" with two or more nodes).
trellis_components() {
  local n i c
  n="$(trellis_nodes)"
  if ((n <= 1)); then
    printf '%s\n' containerd $TRELLIS_CONTROL_PLANE kubelet
    return
  fi
  printf '%s\n' $TRELLIS_CONTROL_PLANE
  for ((i = 1; i <= n; i++)); do for c in $TRELLIS_NODE_COMPONENTS; do printf '%s-%s\n' "$c" "$i"; done; done
}

# Prints the component log files; failing tests and scripts point here.
trellis_log_paths() {
  local c
  for c in $(trellis_components); do
    printf '%s\n' "$TRELLIS_LOG_DIR/$c.log"
  done
}

trellis_log() { printf '[trellis %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
trellis_die() { printf '[trellis] error: %s\n' "$*" >&2; exit 1; }
