#!/usr/bin/env bash
# `npm run images`: builds the Trellis runtime image with buildah (no Docker) and imports it into
# the local cluster's containerd.
# Usage: scripts/images/build.sh [--no-load] [--load-only] [--force-base]
#   --no-load     build and write the archive, do not import it
#   --load-only   import the archive of the last build (same as scripts/images/load.sh)
#   --force-base  rebuild the base rootfs even if a cached one matches
# Env: TRELLIS_IMAGE (default localhost/trellis-runtime:dev), TRELLIS_BASE_IMAGE,
#      TRELLIS_STORAGE_DRIVER (overlay|vfs), TRELLIS_CLUSTER_DIR, XDG_CACHE_HOME.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOAD=1
BASE_ARGS=()
for arg in "$@"; do
  case "$arg" in
    --no-load) LOAD=0 ;;
    --load-only) exec bash "$IMAGES_DIR/load.sh" ;;
    --force-base) BASE_ARGS+=(--force) ;;
    -h | --help) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "build.sh: unknown argument '$arg' (expected --no-load, --load-only or --force-base)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "build.sh must run as root (debootstrap, chroot builds, containerd import)"
ensure_commands buildah:buildah debootstrap:debootstrap ctr:containerd
[ -x "$REPO_ROOT/node_modules/.bin/esbuild" ] || die "esbuild is not installed: run 'npm ci' in $REPO_ROOT first"

cd "$REPO_ROOT"
mkdir -p "$TRELLIS_IMAGE_CACHE"
log "image $TRELLIS_IMAGE (base $TRELLIS_BASE_IMAGE, storage driver $STORAGE_DRIVER)"

step "base image" bash "$IMAGES_DIR/base.sh" "${BASE_ARGS[@]}"
step "sidecar bundle" node runtime-image/sidecar/build.mjs
step "operator bundle" node operator/build.mjs
step "python packages (pydantic)" bash "$IMAGES_DIR/wheels.sh"

VERSION=$(node -p 'require("./package.json").version')
REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain -- runtime-image operator 2>/dev/null)" ]; then REVISION="$REVISION-dirty"; fi

# --layers keeps the user/dirs step cached, so a warm build only redoes the COPYs.
OLD_ID=$(buildah images -q --no-trunc "$TRELLIS_IMAGE" 2>/dev/null | head -1 || true)
step "buildah bud $TRELLIS_IMAGE" \
  buildah bud --isolation "$BUILDAH_ISOLATION" --layers --quiet \
  --build-arg BASE="$TRELLIS_BASE_IMAGE" \
  --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
  -f runtime-image/Dockerfile -t "$TRELLIS_IMAGE" . >/dev/null

IMAGE_ID=$(buildah images -q --no-trunc "$TRELLIS_IMAGE" | head -1)
# The previous build is now untagged; its cached layers stay for --layers.
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$IMAGE_ID" ]; then buildah rmi "$OLD_ID" >/dev/null 2>&1 || true; fi

ARCHIVE=$(image_archive_path)
if [ -s "$ARCHIVE" ] && [ "$(cat "$ARCHIVE.image-id" 2>/dev/null)" = "$IMAGE_ID" ]; then
  log "archive $ARCHIVE already holds this image, not rewriting it"
else
  # oci-archive keeps the name in the index annotation, which `ctr images import` uses as the ref.
  step "write $ARCHIVE" \
    buildah push --quiet "$TRELLIS_IMAGE" "oci-archive:$ARCHIVE.partial:$TRELLIS_IMAGE"
  mv "$ARCHIVE.partial" "$ARCHIVE"
  printf '%s\n' "$IMAGE_ID" >"$ARCHIVE.image-id"
fi
log "image size: $(buildah images --format '{{.Size}}' "$TRELLIS_IMAGE" | head -1) (archive $(du -m "$ARCHIVE" | cut -f1) MB)"

if [ "$LOAD" -eq 1 ]; then
  bash "$IMAGES_DIR/load.sh" --if-running
else
  log "import skipped (--no-load); later: npm run images -- --load-only"
fi
log "done in ${SECONDS}s"
