#!/usr/bin/env bash
# Node failure for tests on a cluster of several nodes (TRELLIS_NODES >= 2):
#   node.sh stop NODE    freeze the node (kubelet, containerd, kube-proxy, every shim and container
#                        process: one cgroup freezer) and cut its link to the host and the others
#   node.sh start NODE   reconnect it and thaw it: it carries on where it stopped
#   node.sh list         one line per node: NAME IP STATE (Running, Stopped)
# NODE is a node name (trellis-node-2) or its index (2). A stopped node stops renewing its Lease:
# the controller-manager marks it NotReady and taint-based eviction follows.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/env.sh"
. "$HERE/lib/config.sh"
. "$HERE/lib/nodes.sh"

[[ "$(id -u)" == 0 ]] || trellis_die "node.sh must run as root"
n="$(trellis_nodes)"
((n >= 2)) || trellis_die "node.sh needs a cluster of several nodes (TRELLIS_NODES=3 npm run cluster:up); this one has $n"

index_of() {
  local x="${1#trellis-node-}"
  [[ "$x" =~ ^[0-9]+$ ]] && ((x >= 1 && x <= n)) || trellis_die "no node '$1' (nodes: trellis-node-1 .. trellis-node-$n)"
  printf '%s\n' "$x"
}

case "${1:-}" in
  stop)
    i="$(index_of "${2:?node.sh stop NODE}")"
    # Cut first: nothing leaves the node once it stops answering.
    node_link "$i" down
    node_freezer "$i" FROZEN
    trellis_log "stopped $(trellis_node_name "$i")"
    ;;
  start)
    i="$(index_of "${2:?node.sh start NODE}")"
    node_freezer "$i" THAWED
    node_link "$i" up
    trellis_log "started $(trellis_node_name "$i")"
    ;;
  list)
    for ((i = 1; i <= n; i++)); do printf '%s %s %s\n' "$(trellis_node_name "$i")" "$(node_ip_of "$i")" "$(node_state "$i")"; done
    ;;
  *) trellis_die "usage: node.sh stop NODE | start NODE | list" ;;
esac
