#!/usr/bin/env bash
# Lists what a stopped local cluster left on the host; exits 1 when anything is left.
# Run after `npm run cluster:down` (scripts/test.sh does, after the three-node suites).
# Looks for: cluster processes, mounts under the cluster dir, pod and node network namespaces,
# the bridges and node veths, kubepods and node cgroups, KUBE-*/CNI- iptables chains on the host,
# routes to the pod ranges.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/env.sh"

left=()
note() { left+=("$*"); }

for p in /proc/[0-9]*; do
  exe="$(readlink "$p/exe" 2>/dev/null || true)"
  [[ "$exe" == "$TRELLIS_CACHE/bin/"* ]] && note "process ${p#/proc/}: $exe"
  cmd="$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null || true)"
  [[ "$cmd" == *containerd* && "$cmd" == *"$TRELLIS_CLUSTER_DIR/"* ]] && note "process ${p#/proc/}: $cmd"
done
while read -r m; do [[ -n "$m" ]] && note "mount $m"; done < <(findmnt -rn -o TARGET | grep -F "$TRELLIS_CLUSTER_DIR/" || true)
while read -r ns; do [[ -n "$ns" ]] && note "network namespace $ns"; done < <(ip netns list 2>/dev/null | awk '$1 ~ /^trellis-node-/ {print $1}')
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do
  ip -n "$ns" -4 -o addr show 2>/dev/null | grep -q " inet 10\.244\." && note "pod network namespace $ns"
done
while read -r l; do [[ -n "$l" ]] && note "link $l"; done < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^(trellis0|trellisn0|trellis-n[0-9]+)$' || true)
while read -r r; do [[ -n "$r" ]] && note "route $r"; done < <(ip route show 2>/dev/null | grep -E '^10\.24[34]\.' || true)
for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice /sys/fs/cgroup/*/trellis-node-*; do
  [[ -d "$d" ]] && note "cgroup $d"
done
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in filter nat mangle; do
    while read -r c; do [[ -n "$c" ]] && note "$ipt -t $table chain $c"; done < <("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ {print $2}')
  done
done

if ((${#left[@]} == 0)); then
  trellis_log "nothing of the local cluster is left on this host"
  exit 0
fi
printf 'left behind by the local cluster:\n' >&2
printf '  %s\n' "${left[@]}" >&2
exit 1
