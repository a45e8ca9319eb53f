#!/usr/bin/env bash
# Prints the local cluster's component log files; with --tail N also the last N lines of each.
#   logs.sh            paths only
#   logs.sh --tail 40  paths and the last 40 lines of each
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

tail_n=0
case "${1:-}" in
  "") ;;
  --tail) tail_n="${2:?--tail needs a line count}" ;;
  *) trellis_die "logs.sh: unknown argument '$1' (use --tail N)" ;;
esac
[[ "$tail_n" =~ ^[0-9]+$ ]] || trellis_die "logs.sh: --tail must be a whole number, got '$tail_n'"

for f in $(trellis_log_paths); do
  if ((tail_n > 0)) && [[ -f "$f" ]]; then
    printf '==> %s <==\n' "$f"
    tail -n "$tail_n" "$f"
  else
    printf '%s\n' "$f"
  fi
done
