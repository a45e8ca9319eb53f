#!/usr/bin/env bash
# Imports the archive written by build.sh into the local cluster's containerd (namespace k8s.io),
# of every node when the cluster has several.
# Usage: scripts/images/load.sh [--if-running] [ARCHIVE]
#   --if-running  when the cluster's containerd is not up, say so and exit 0 instead of failing
# Env: TRELLIS_LOAD_ADDRESS (one containerd socket instead of every node's),
#      TRELLIS_SNAPSHOTTER (unpack for this snapshotter; default: containerd's default).
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IF_RUNNING=0
ARCHIVE=""
for arg in "$@"; do
  case "$arg" in
    --if-running) IF_RUNNING=1 ;;
    -*) die "load.sh: unknown flag '$arg' (expected --if-running)" ;;
    *) ARCHIVE="$arg" ;;
  esac
done
ARCHIVE="${ARCHIVE:-$(image_archive_path)}"
[ -s "$ARCHIVE" ] || die "no image archive at $ARCHIVE: run 'npm run images' (or scripts/images/build.sh --no-load) first"

if [ -f "$REPO_ROOT/scripts/cluster/env.sh" ]; then
  # shellcheck disable=SC1091
  source "$REPO_ROOT/scripts/cluster/env.sh"
fi
# Every node's containerd (one with a single node); CONTAINERD_ADDRESS set by the caller picks one.
if [ -n "${TRELLIS_LOAD_ADDRESS:-}" ]; then
  ADDRESSES="$TRELLIS_LOAD_ADDRESS"
elif declare -F trellis_containerd_addresses >/dev/null; then
  ADDRESSES="$(trellis_containerd_addresses)"
else
  ADDRESSES="${CONTAINERD_ADDRESS:-${TRELLIS_CLUSTER_DIR:-$HOME/.local/state/trellis/cluster}/containerd/containerd.sock}"
fi

load_into() {
  local CONTAINERD_ADDRESS="$1"
  if ! { [ -S "$CONTAINERD_ADDRESS" ] && ctr --address "$CONTAINERD_ADDRESS" version >/dev/null 2>&1; }; then
    msg="cluster containerd is not running at $CONTAINERD_ADDRESS"
    if [ "$IF_RUNNING" -eq 1 ]; then
      log "import skipped: $msg"
      log "after 'npm run cluster:up', import with: npm run images -- --load-only  (or bash scripts/images/load.sh)"
      return 0
    fi
    die "$msg; start it with 'npm run cluster:up' or set CONTAINERD_ADDRESS"
  fi

  # Importing the same manifest again only costs time.
  WANT=$(tar -xOf "$ARCHIVE" index.json | python3 -c 'import json, sys; print(json.load(sys.stdin)["manifests"][0]["digest"])')
  HAVE=$(ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images ls "name==$TRELLIS_IMAGE" | awk 'NR > 1 { print $3 }')
  if [ "$WANT" = "$HAVE" ]; then
    log "containerd at $CONTAINERD_ADDRESS already has $TRELLIS_IMAGE at $WANT, nothing to import"
    return 0
  fi

  snap=()
  [ -n "${TRELLIS_SNAPSHOTTER:-}" ] && snap=(--snapshotter "$TRELLIS_SNAPSHOTTER")
  local CTR=(ctr --address "$CONTAINERD_ADDRESS" -n k8s.io)
  # The import re-points the name before it unpacks, which leaves the old image's layer snapshots
  # (mostly the new one's too) unreferenced; containerd 1.6's garbage collector can then remove one
  # between the unpacker finding it and stacking the next layer on it ("parent snapshot ... does not
  # exist"). A second name holds the old image until the import is done.
  local HOLD="$TRELLIS_IMAGE-import-hold"
  if [ -n "$HAVE" ]; then "${CTR[@]}" images tag --force "$TRELLIS_IMAGE" "$HOLD" >/dev/null; fi
  local attempt=1
  until "${CTR[@]}" images import "${snap[@]}" "$ARCHIVE" >/dev/null; do
    # Still possible with no old image (its layers unreferenced since an earlier import): the
    # second try finds them gone and unpacks them again.
    ((attempt < 3)) || { "${CTR[@]}" images rm "$HOLD" >/dev/null 2>&1 || true; die "import into $CONTAINERD_ADDRESS failed $attempt times"; }
    log "import into $CONTAINERD_ADDRESS failed (attempt $attempt), trying again"
    attempt=$((attempt + 1))
    sleep "$attempt"
  done
  log "imported into containerd ($CONTAINERD_ADDRESS, namespace k8s.io)"
  "${CTR[@]}" images rm "$HOLD" >/dev/null 2>&1 || true
  ctr --address "$CONTAINERD_ADDRESS" -n k8s.io images ls -q "name==$TRELLIS_IMAGE" | grep -qxF "$TRELLIS_IMAGE" ||
    die "import finished but containerd lists no image named $TRELLIS_IMAGE"
  log "containerd at $CONTAINERD_ADDRESS has $TRELLIS_IMAGE (pods should use imagePullPolicy: Never or IfNotPresent)"
}

# Nodes import side by side: most of the time goes to unpacking, which one import does not saturate.
pids=()
for address in $ADDRESSES; do
  load_into "$address" &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ "$failed" -eq 0 ] || die "import into at least one node's containerd failed (see above)"
