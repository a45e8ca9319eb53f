#!/usr/bin/env bash
# Builds the cluster's binaries from the Go module proxy at pinned versions and caches them under
# $TRELLIS_CACHE/bin/<component>-<version>/. Present binaries are never rebuilt.
#   build.sh [all|go|pause|seaweedfs]    (default: all)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

what="${1:-all}"
case "$what" in all | go | pause | seaweedfs) ;; *) trellis_die "build.sh: unknown target '$what' (use all, go, pause or seaweedfs)" ;; esac

export GOFLAGS="-buildvcs=false"
export CGO_ENABLED=0
SRC_DIR="$TRELLIS_CACHE/src"
K8S_BINS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy"

have_all() { # have_all VERSION NAME...
  local v="$1" n
  shift
  for n in "$@"; do [[ -x "$(trellis_bin_dir "$n" "$v")/$n" ]] || return 1; done
}

# Moves freshly built binaries from $1 into their cache dirs, one rename each so a half-written
# binary is never visible.
install_bins() { # install_bins FROM_DIR VERSION NAME...
  local from="$1" v="$2" n dir
  shift 2
  for n in "$@"; do
    dir="$(trellis_bin_dir "$n" "$v")"
    mkdir -p "$dir"
    cp "$from/$n" "$dir/.$n.tmp" && mv -f "$dir/.$n.tmp" "$dir/$n"
  done
}

build_kubernetes() {
  if have_all "$K8S_VERSION" $K8S_BINS; then
    trellis_log "kubernetes $K8S_VERSION: cached in $TRELLIS_CACHE/bin"
    return
  fi
  local t0=$SECONDS dir="$SRC_DIR/kubernetes-$K8S_VERSION" staging="v0.${K8S_VERSION#v1.}"
  trellis_log "kubernetes $K8S_VERSION: resolving module and staging replaces ($staging)"
  mkdir -p "$dir"
  local gomod
  gomod="$(cd "$dir" && GOFLAGS= go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  # Every "k8s.io/x => ./staging/..." line of the upstream go.mod becomes "k8s.io/x => k8s.io/x v0.N.P".
  local replaces
  replaces="$(awk -v v="$staging" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }' "$gomod")"
  [[ -n "$replaces" ]] || trellis_die "no staging replace lines found in $gomod"
  {
    printf 'module trellis.local/build/kubernetes\n\ngo 1.24.0\n\ngodebug default=go1.24\n\n'
    printf 'require k8s.io/kubernetes %s\n\nreplace (\n%s\n)\n' "$K8S_VERSION" "$replaces"
  } >"$dir/go.mod"
  rm -f "$dir/go.sum"
  # Only what the cache lacks (a cache from before kube-proxy was added keeps its four).
  local pkgs=() n missing=()
  for n in $K8S_BINS; do have_all "$K8S_VERSION" "$n" || missing+=("$n"); done
  for n in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$n"); done
  (cd "$dir" && go get "${pkgs[@]/%/@$K8S_VERSION}")

  local date major minor pkg ld=""
  date="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Time"])' "${gomod%.mod}.info")"
  major="${K8S_VERSION#v}" && major="${major%%.*}"
  minor="${K8S_VERSION#v*.}" && minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=$date"
  done
  local out
  out="$(mktemp -d "$SRC_DIR/out.XXXXXX")"
  trellis_log "kubernetes $K8S_VERSION: go build ${missing[*]} (slow on a cold Go cache)"
  (cd "$dir" && go build -trimpath -ldflags="-s -w$ld" -o "$out/" "${pkgs[@]}")
  install_bins "$out" "$K8S_VERSION" "${missing[@]}"
  rm -rf "$out"
  trellis_log "kubernetes $K8S_VERSION: built in $((SECONDS - t0)) s"
}

# A small Go program from its module at a pinned version, in a throwaway module of its own.
#   build_module NAME CACHE_VERSION EXTRA_LDFLAGS MODULE@VERSION... -- BIN=PACKAGE...
build_module() {
  local name="$1" v="$2" ld="$3" gets=() builds=() bins=() b
  shift 3
  while [[ $# -gt 0 && "$1" != "--" ]]; do gets+=("$1") && shift; done
  shift
  builds=("$@")
  for b in "${builds[@]}"; do bins+=("${b%%=*}"); done
  if have_all "$v" "${bins[@]}"; then
    trellis_log "$name $v: cached"
    return
  fi
  local t0=$SECONDS dir="$SRC_DIR/$name-$v" out
  mkdir -p "$dir"
  printf 'module trellis.local/build/%s\n\ngo 1.24.0\n' "$name" >"$dir/go.mod"
  rm -f "$dir/go.sum"
  (cd "$dir" && go get "${gets[@]}")
  out="$(mktemp -d "$SRC_DIR/out.XXXXXX")"
  trellis_log "$name $v: go build ${bins[*]}"
  for b in "${builds[@]}"; do
    (cd "$dir" && go build -trimpath -ldflags="-s -w$ld" -o "$out/${b%%=*}" "${b#*=}")
  done
  install_bins "$out" "$v" "${bins[@]}"
  rm -rf "$out"
  trellis_log "$name $v: built in $((SECONDS - t0)) s"
}

build_etcd() {
  build_module etcd "$ETCD_VERSION" "" \
    "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" -- \
    etcd=go.etcd.io/etcd/server/v3 etcdctl=go.etcd.io/etcd/etcdctl/v3
}

build_crictl() {
  build_module crictl "$CRICTL_VERSION" " -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" -- crictl=sigs.k8s.io/cri-tools/cmd/crictl
}

# SeaweedFS's weed (master, volume, filer and S3 gateway in one binary), cached by the commit of
# its pseudo-version; the slowest build here after Kubernetes (about 4 minutes on a cold Go cache).
build_seaweedfs() {
  build_module seaweedfs "${SEAWEEDFS_VERSION##*-}" "" \
    "github.com/seaweedfs/seaweedfs/weed@$SEAWEEDFS_VERSION" -- weed=github.com/seaweedfs/seaweedfs/weed
}

# The sandbox ("pause") image: our own static binary in a FROM-scratch OCI image, saved as an
# archive that up.sh imports into containerd. Keyed by the source hash so an edit rebuilds it.
build_pause() {
  local src="$TRELLIS_ROOT/scripts/cluster/pause/pause.c" dir
  dir="$(dirname "$(trellis_pause_archive)")"
  if [[ -f "$dir/pause.oci.tar" ]]; then
    trellis_log "pause image: cached ($dir)"
    return
  fi
  command -v buildah >/dev/null || trellis_die "buildah missing: run scripts/cluster/deps.sh"
  trellis_log "pause image: gcc -static + buildah ($PAUSE_IMAGE)"
  local work
  work="$(mktemp -d)"
  gcc -Os -static -Wall -Wextra -o "$work/pause" "$src"
  strip "$work/pause"
  printf 'FROM scratch\nADD pause /pause\nENTRYPOINT ["/pause"]\n' >"$work/Containerfile"
  # Private, throwaway buildah storage (vfs: no mounts left behind).
  local bh=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
  "${bh[@]}" bud --quiet --isolation chroot -t "$PAUSE_IMAGE" -f "$work/Containerfile" "$work" >/dev/null
  mkdir -p "$dir"
  "${bh[@]}" push --quiet "$PAUSE_IMAGE" "oci-archive:$dir/.pause.oci.tar:$PAUSE_IMAGE"
  mv -f "$dir/.pause.oci.tar" "$dir/pause.oci.tar"
  cp "$work/pause" "$dir/pause"
  "${bh[@]}" rmi --all --force >/dev/null 2>&1 || true
  rm -rf "$work"
  trellis_log "pause image: $dir/pause.oci.tar"
}

if [[ "$what" != pause ]]; then
  command -v go >/dev/null || trellis_die "go not found on PATH: build.sh needs Go >= 1.24 (Kubernetes $K8S_VERSION)"
  gov="$(go env GOVERSION)" && gov="${gov#go}"
  IFS=. read -r gomaj gomin _ <<<"$gov"
  ((gomaj > 1 || gomin >= 24)) || trellis_die "Go $gov is too old: Kubernetes $K8S_VERSION needs Go >= 1.24"
fi
mkdir -p "$SRC_DIR"
t_all=$SECONDS
if [[ "$what" == all || "$what" == go ]]; then
  build_etcd
  build_crictl
  build_kubernetes
fi
if [[ "$what" == all || "$what" == go || "$what" == seaweedfs ]]; then
  build_seaweedfs
fi
if [[ "$what" == all || "$what" == pause ]]; then
  build_pause
fi
trellis_log "build.sh $what: done in $((SECONDS - t_all)) s"
