#!/usr/bin/env bash
# Runs the built image without Kubernetes: starts a throwaway containerd (own root, state and
# socket in a temp dir), imports the archive from build.sh, runs checks with `ctr run`, stops it.
# Usage: scripts/images/check.sh [ARCHIVE]
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ARCHIVE="${1:-$(image_archive_path)}"
[ -s "$ARCHIVE" ] || die "no image archive at $ARCHIVE: run scripts/images/build.sh --no-load first"
[ "$(id -u)" -eq 0 ] || die "check.sh must run as root (containerd)"
ensure_commands containerd:containerd runc:runc

D=$(mktemp -d /tmp/trellis-img-check.XXXXXX)
PID=""
stop() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill "$PID"
    while kill -0 "$PID" 2>/dev/null; do sleep 0.1; done
  fi
  awk -v d="$D/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf --one-file-system "$D"
}
trap stop EXIT

SOCK="$D/containerd.sock"
cat >"$D/config.toml" <<EOF
version = 2
root = "$D/root"
state = "$D/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
EOF
containerd --config "$D/config.toml" >"$D/containerd.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  ctr --address "$SOCK" version >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || { cat "$D/containerd.log" >&2; die "temporary containerd exited"; }
  sleep 0.1
done
ctr --address "$SOCK" version >/dev/null 2>&1 || die "temporary containerd did not answer within 10s"

CTR=(ctr --address "$SOCK" -n k8s.io)
step "import $ARCHIVE" "${CTR[@]}" images import "$ARCHIVE" >/dev/null
"${CTR[@]}" images ls -q | grep -qxF "$TRELLIS_IMAGE" || die "imported archive holds no image named $TRELLIS_IMAGE"

n=0
failures=0
# expect NAME WANT CMD...: runs CMD in a fresh container and compares its trimmed stdout.
expect() {
  local name="$1" want="$2" got
  shift 2
  n=$((n + 1))
  got=$("${CTR[@]}" run --rm "$TRELLIS_IMAGE" "trellis-check-$$-$n" "$@" 2>&1) || true
  # shellcheck disable=SC2053 # want is a glob on purpose
  if [[ "$got" == $want ]]; then
    log "ok   $name: $got"
  else
    log "FAIL $name: got '$got', want '$want'"
    failures=$((failures + 1))
  fi
}

expect "python is 3.11" "3.11.*" python3 -c 'import sys; print(sys.version.split()[0])'
expect "node is 20" "v20.*" node --version
# shellcheck disable=SC2016 # expanded inside the container
expect "runs as uid 10001" "10001:10001" sh -c 'echo "$(id -u):$(id -g)"'
expect "workdir is /app and writable" "/app ok" sh -c 'pwd | tr -d "\n"; touch /app/.w && echo " ok"'
expect "/opt/trellis is read-only to the user" "denied" sh -c 'touch /opt/trellis/python/x 2>/dev/null && echo writable || echo denied'
expect "PYTHONPATH" "/opt/trellis/python" python3 -c 'import os; print(os.environ["PYTHONPATH"])'
expect "PYTHONUNBUFFERED" "1" python3 -c 'import os; print(os.environ["PYTHONUNBUFFERED"])'
expect "sidecar bundle runs" "trellis-sidecar *" node /opt/trellis/sidecar/sidecar.mjs --version
expect "TLS roots present" "True" python3 -c 'import ssl; print(len(ssl.create_default_context().get_ca_certs()) > 50)'
expect "time zones present" "Europe/Berlin" python3 -c 'import zoneinfo; print(zoneinfo.ZoneInfo("Europe/Berlin"))'
# A pod sets its own PYTHONPATH (SDK copy and app dir): pydantic must not depend on the image's.
expect "pydantic 2 under a pod's PYTHONPATH" "2.*" env PYTHONPATH=/tmp python3 -c 'import pydantic; print(pydantic.VERSION)'
expect "pydantic-core compiled module loads" "ok" python3 -c 'import pydantic_core._pydantic_core; print("ok")'
# The issue this guards: an app taking and returning pydantic models must import and run.
expect "a pydantic app runs" "*pydantic app ok" python3 -c '
import pydantic
from tensorlake.applications import application, function, run_local_application
class Order(pydantic.BaseModel):
    n: int
@application()
@function()
def bump(o: Order) -> Order:
    return Order(n=o.n + 1)
print("pydantic app ok" if run_local_application(bump, Order(n=1)).output() == Order(n=2) else "wrong output")'
if [ -f "$REPO_ROOT/runtime-image/python/trellis/__init__.py" ]; then
  expect "import trellis" "ok" python3 -c 'import trellis; print("ok")'
fi

[ "$failures" -eq 0 ] || die "$failures of $n image checks failed"
log "all $n image checks passed"
