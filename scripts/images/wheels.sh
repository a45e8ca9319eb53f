#!/usr/bin/env bash
# Stages the Python packages the runtime image carries (pydantic 2, which Tensorlake's SDK and
# typical Tensorlake apps depend on) in dist/python-packages, for runtime-image/Dockerfile to COPY.
# The wheels come from this machine's own pip configuration (index, proxy, certificates) and are
# cached, so rebuilds need no network; nothing is downloaded inside the image build.
# Usage: scripts/images/wheels.sh [--force]
#   --force   download the wheels again even if the cache has them
# Env: XDG_CACHE_HOME.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Exact versions (what pip resolved for pydantic>=2,<3 when pinned), so every build installs the
# same packages. Tensorlake 0.5.163 requires pydantic>=2.0,<3.0.
PINS=(pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-extensions==4.16.0 typing-inspection==0.4.5)
# The image's interpreter and machine (the base image is Debian bookworm's python3 on x86_64).
PY_VERSION=3.11
PLATFORM=manylinux2014_x86_64

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    *) die "wheels.sh: unknown argument '$arg' (expected --force)" ;;
  esac
done

CACHE="$TRELLIS_CACHE_ROOT/wheels/cp${PY_VERSION/./}-$PLATFORM"
STAGE="$REPO_ROOT/dist/python-packages"
STAMP="$(printf '%s\n' "${PINS[@]}" "$PY_VERSION" "$PLATFORM")"

if [ "$FORCE" -eq 1 ] || [ "$(cat "$CACHE/.pins" 2>/dev/null)" != "$STAMP" ]; then
  log "downloading ${PINS[*]} for cp${PY_VERSION/./} $PLATFORM (pip's own index configuration)"
  rm -rf "$CACHE.partial"
  mkdir -p "$CACHE.partial"
  python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --python-version "$PY_VERSION" --implementation cp --platform "$PLATFORM" \
    -d "$CACHE.partial" "${PINS[@]}" >&2 ||
    die "pip download of ${PINS[*]} failed; check 'python3 -m pip config list' for this machine's index"
  printf '%s\n' "$STAMP" >"$CACHE.partial/.pins"
  rm -rf "$CACHE"
  mv "$CACHE.partial" "$CACHE"
else
  log "wheels cached in $CACHE"
fi

if [ "$(cat "$STAGE/.pins" 2>/dev/null)" = "$STAMP" ] && [ "$FORCE" -eq 0 ]; then
  log "python packages already staged in $STAGE"
  exit 0
fi
rm -rf "$STAGE"
# --isolated with --no-index: only the cached wheels, whatever the machine's pip settings say;
# --target with --platform installs for the image's interpreter, not this one.
python3 -m pip install --isolated --quiet --disable-pip-version-check --no-warn-conflicts --root-user-action=ignore \
  --no-index --find-links "$CACHE" --only-binary=:all: --no-compile \
  --python-version "$PY_VERSION" --implementation cp --platform "$PLATFORM" \
  --target "$STAGE" "${PINS[@]}" >&2 || die "installing the cached wheels into $STAGE failed"
printf '%s\n' "$STAMP" >"$STAGE/.pins"
log "staged ${PINS[*]} in $STAGE ($(du -sm "$STAGE" | cut -f1) MB)"
