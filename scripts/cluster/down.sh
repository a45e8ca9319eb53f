#!/usr/bin/env bash
# Stops the local cluster that up.sh started and removes what it left on the host: pods and their
# containers, mounts under the cluster dir, pod network namespaces, the pod bridge, the node
# namespaces and their bridge (several nodes), the kubepods and node cgroups, the kubelet's and
# kube-proxy's iptables chains; restores the host sysctls the kubelet changed.
#
#   down.sh            every up starts a clean cluster: etcd, kubelet, CNI and container state
#                      are wiped; kept: certificates and kubeconfigs (pki/), the last logs, and
#                      containerd's image store (so `npm run images` need not run again).
#   down.sh --purge    also removes the images, certificates and logs (the whole cluster dir).
# Idempotent: safe to run when nothing is running. Cached binaries are never touched.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/env.sh"
. "$HERE/lib/proc.sh"
. "$HERE/lib/config.sh"
. "$HERE/lib/nodes.sh"

purge=0
for a in "$@"; do
  case "$a" in
    --purge) purge=1 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) trellis_die "down.sh: unknown argument '$a' (use --purge)" ;;
  esac
done
[[ "$(id -u)" == 0 ]] || trellis_die "down.sh must run as root"
cluster_lock
D="$TRELLIS_CLUSTER_DIR"
T0=$SECONDS

# Node indexes: 0 for the single host node, else every node namespace or cgroup found (a crash may
# have lost the recorded count).
NODE_INDEXES=(0 $(nodes_present))
if (($(trellis_nodes) > 1)); then
  for ((i = 1; i <= $(trellis_nodes); i++)); do NODE_INDEXES+=("$i"); done
fi
NODE_INDEXES=($(printf '%s\n' "${NODE_INDEXES[@]}" | sort -un))

# 0. A stopped node is frozen: nothing in it could act on a signal until it is thawed.
for i in "${NODE_INDEXES[@]}"; do
  ((i == 0)) && continue
  node_freezer "$i" THAWED
  node_link "$i" up
done

# 1. The kubelets first, so they do not restart what is torn down next.
for i in "${NODE_INDEXES[@]}"; do
  node_context "$i"
  proc_stop "kubelet$NODE_SUFFIX" 20 &
done
wait

# 2. Pods through the CRI: stops containers, runs CNI DEL (veth, IPAM), removes netns and mounts.
for i in "${NODE_INDEXES[@]}"; do
  node_context "$i"
  if proc_pid "containerd$NODE_SUFFIX" >/dev/null && [[ -x "$(trellis_bin crictl)" ]]; then
    write_crictl_config
    cri_remove_pods "$NODE_DIR"
    # Anything the CRI did not own (e.g. started with ctr in namespace k8s.io).
    CTR=(ctr --address "$NODE_SOCK" --namespace k8s.io)
    for t in $("${CTR[@]}" tasks ls -q 2>/dev/null || true); do
      "${CTR[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
      "${CTR[@]}" tasks delete -f "$t" >/dev/null 2>&1 || true
    done
    for c in $("${CTR[@]}" containers ls -q 2>/dev/null || true); do
      "${CTR[@]}" containers delete "$c" >/dev/null 2>&1 || true
    done
  fi
done

# 3. The control plane and kube-proxies (in parallel: each takes a second or two), then etcd and
#    the containerds.
for c in kube-scheduler kube-controller-manager kube-apiserver; do proc_stop "$c" 20 & done
for i in "${NODE_INDEXES[@]}"; do ((i == 0)) || proc_stop "kube-proxy-$i" 20 & done
wait
proc_stop etcd 20
proc_stop seaweedfs 20
for i in "${NODE_INDEXES[@]}"; do
  node_context "$i"
  proc_stop "containerd$NODE_SUFFIX" 20 &
done
wait

# 4. Leftovers of a crash: shims of our containerds (their command line names a socket under the
#    cluster dir) and any process still inside our pod or node cgroups.
for p in /proc/[0-9]*; do
  cmd="$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null || true)"
  if [[ "$cmd" == *containerd-shim* && "$cmd" == *"$D/"* ]]; then
    trellis_log "killing leftover shim ${p#/proc/}"
    kill -KILL "${p#/proc/}" 2>/dev/null || true
  fi
done
leftover_pids() {
  find /sys/fs/cgroup/pids/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null || true
  for i in "${NODE_INDEXES[@]}"; do ((i == 0)) || node_pids "$i"; done
}
if [[ -n "$(leftover_pids)" ]]; then
  for pid in $(leftover_pids); do
    trellis_log "killing leftover pod or node process $pid"
    kill -KILL "$pid" 2>/dev/null || true
  done
  pods_empty() { [[ -z "$(leftover_pids)" ]]; }
  wait_for "pod processes to exit" 10 pods_empty || true
fi

# 5. Mounts under the cluster dir (kubelet volumes, its rshared bind mount, containerd rootfs/shm),
#    deepest first.
mounts_under() { findmnt -rn -o TARGET | awk -v d="$D/" 'index($0, d) == 1 || $0 == substr(d, 1, length(d) - 1)' | sort -r; }
for m in $(mounts_under); do
  umount "$m" 2>/dev/null || umount -l "$m" || true
done

# 6. Pod network namespaces that still hold an address of our pod ranges; the single node's pod
#    bridge; the node namespaces (with their pod bridges and iptables) and the nodes' bridge.
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do
  if ip -n "$ns" -4 -o addr show 2>/dev/null | grep -q " inet 10\.244\."; then
    trellis_log "deleting network namespace $ns"
    ip netns delete "$ns" || true
  fi
done
if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
  trellis_log "deleting bridge $CNI_BRIDGE"
  ip link delete "$CNI_BRIDGE"
fi
nodes_network_down

# 7. The kubepods cgroup hierarchy (kubelet's QoS and pod cgroups) and the node cgroups, leaves first.
for top in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
  [[ -d "$top" ]] || continue
  find "$top" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  if [[ -d "$top" ]]; then trellis_log "warning: could not remove cgroup $top (still in use?)"; fi
done
nodes_cgroups_down

# 8. iptables chains the kubelet (KUBE-*) and CNI plugins (CNI-*) created on the host, with the
#    jumps to them (the node namespaces' own tables went with them).
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in filter nat mangle; do
    rules="$("$ipt" -t "$table" -S 2>/dev/null || true)"
    chains="$(awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-)/ {print $2}' <<<"$rules")"
    [[ -n "$chains" ]] || continue
    while read -r rule; do
      [[ -n "$rule" ]] || continue
      eval "\"$ipt\" -t \"$table\" ${rule/-A/-D}" 2>/dev/null || true
    done < <(grep -E -- '^-A [A-Z]+ .*-j (KUBE-|CNI-)' <<<"$rules" | grep -vE '^-A (KUBE-|CNI-)')
    for chain in $chains; do "$ipt" -t "$table" -F "$chain" 2>/dev/null || true; done
    for chain in $chains; do "$ipt" -t "$table" -X "$chain" 2>/dev/null || true; done
  done
done

# 9. Files the kubelet and libcni write at fixed host paths; the directories go only when empty.
find /var/log/containers -maxdepth 1 -type l -lname "$D/*" -delete 2>/dev/null || true
rm -f /var/lib/kubelet/device-plugins/kubelet.sock /var/lib/kubelet/device-plugins/kubelet_internal_checkpoint
rm -f /var/lib/cni/results/trellis-* 2>/dev/null || true
for dir in /var/log/containers /var/lib/kubelet/device-plugins /var/lib/kubelet /var/lib/cni/results /var/lib/cni; do
  if [[ -d "$dir" ]]; then rmdir --ignore-fail-on-non-empty "$dir"; fi
done

# 10. Host sysctls back to what they were before up.
if [[ -f "$TRELLIS_RUN_DIR/sysctl.saved" ]]; then
  while IFS='=' read -r key value; do sysctl -qw "$key=$value" || true; done <"$TRELLIS_RUN_DIR/sysctl.saved"
fi

# 11. State. Refuse to delete through a mount that is still there.
left="$(mounts_under)"
[[ -z "$left" ]] || trellis_die "mounts still present under $D, not deleting state: $left"
if ((purge)); then
  rm -rf "$D"
  trellis_log "purged $D"
else
  # Node image stores are kept like the single node's; everything else of a node goes.
  for n in "$D"/nodes/*/; do
    [[ -d "$n" ]] || continue
    find "$n" -mindepth 1 -maxdepth 1 ! -name containerd -exec rm -rf {} +
    rm -rf "$n/containerd/state" "$n/containerd/runc" "$n/containerd/containerd.sock" "$n/containerd/containerd.sock.ttrpc"
  done
  node_context 0
  rm -rf "$D/etcd" "$D/seaweedfs" "$D/kubelet" "$D/containerd/state" "$D/containerd/runc" "$D/cni/ipam" "$D/pod-logs" "$TRELLIS_RUN_DIR" \
    "$NODE_SOCK" "$NODE_SOCK.ttrpc"
fi
trellis_log "cluster down in $((SECONDS - T0)) s"
