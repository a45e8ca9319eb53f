# Shared helpers for scripts/images/*.sh (sourced, not run).
# shellcheck shell=bash

IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_ROOT="$(cd "$IMAGES_DIR/../.." && pwd)"

TRELLIS_IMAGE="${TRELLIS_IMAGE:-localhost/trellis-runtime:dev}"
TRELLIS_BASE_IMAGE="${TRELLIS_BASE_IMAGE:-localhost/trellis-base:bookworm-py311-node20}"
TRELLIS_CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/trellis"
TRELLIS_IMAGE_CACHE="$TRELLIS_CACHE_ROOT/images"
# overlay measured here: runtime build 1-3 s and 225 MB of storage; vfs: 35-50 s and 1.8 GB.
export STORAGE_DRIVER="${TRELLIS_STORAGE_DRIVER:-overlay}"
# chroot isolation needs no user namespaces or cgroup setup, which suits VMs and CI runners.
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"

# Where the archive of the last build is kept for load.sh.
image_archive_path() {
  local safe="${TRELLIS_IMAGE//[\/:]/_}"
  printf '%s/%s.oci.tar\n' "$TRELLIS_IMAGE_CACHE" "$safe"
}

# Exported so nested scripts print times from the same start.
export TRELLIS_IMAGES_T0="${TRELLIS_IMAGES_T0:-$(date +%s)}"
log() { printf '[images %4ss] %s\n' "$(($(date +%s) - TRELLIS_IMAGES_T0))" "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

# step NAME CMD...: runs CMD and prints how long it took.
step() {
  local name="$1" t0=$SECONDS
  shift
  log "$name ..."
  "$@"
  log "$name done in $((SECONDS - t0))s"
}

# Installs Debian packages whose command is missing (apt-get update only when the install fails
# for lack of package lists).
ensure_commands() {
  local missing=() cmd pkg
  for pair in "$@"; do
    cmd="${pair%%:*}"
    pkg="${pair##*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; install them as root: apt-get install -y ${missing[*]}"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y "${missing[@]}" >&2; then
    apt-get update >&2
    apt-get install -y "${missing[@]}" >&2
  fi
}

image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

image_label() {
  buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null
}
