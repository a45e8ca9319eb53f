# Nodes in network namespaces of their own (two or more nodes; sourced by up.sh, down.sh, node.sh).
#
#   host:  bridge trellisn0 10.243.0.1/24 (the API server listens here), a route to every node's
#          pod range through that node
#   node i: netns trellis-node-i, eth0 10.243.0.(10+i)/24 (veth, host end trellis-n<i> on the
#          bridge), its own pod bridge trellis0 10.244.i.1/24 (made by the CNI plugin), routes to
#          the other nodes' pod ranges through them; no default route, so nothing a pod sends
#          leaves the machine. Service addresses stay on the link: kube-proxy rewrites them first.
#   cgroups: /trellis-node-i in every v1 hierarchy; the kubelet's cgroupRoot. Its containerd,
#          kubelet and kube-proxy (and so every shim) run in /trellis-node-i/daemons, so freezing
#          /trellis-node-i stops the whole node at once.

CGROUP_FS="/sys/fs/cgroup"

node_veth() { printf 'trellis-n%s\n' "$1"; }

# Every v1 hierarchy mounted under /sys/fs/cgroup (cpu, memory, freezer, pids, name=systemd, ...).
cgroup_hierarchies() {
  local d
  for d in "$CGROUP_FS"/*; do
    [[ -d "$d" && ! -L "$d" && -f "$d/cgroup.procs" && "$(basename "$d")" != unified ]] && printf '%s\n' "$d"
  done
}

# node_cgroups_up INDEX: /trellis-node-i (+ /daemons) in every hierarchy, cpusets filled from the
# root (a new cpuset cgroup starts empty and takes no tasks).
node_cgroups_up() {
  local name h d
  name="$(trellis_node_name "$1")"
  for h in $(cgroup_hierarchies); do
    for d in "$h/$name" "$h/$name/daemons"; do
      mkdir -p "$d"
      if [[ -f "$d/cpuset.cpus" ]]; then
        [[ -n "$(cat "$d/cpuset.cpus")" ]] || cat "$h/cpuset.cpus" >"$d/cpuset.cpus"
        [[ -n "$(cat "$d/cpuset.mems")" ]] || cat "$h/cpuset.mems" >"$d/cpuset.mems"
      fi
    done
  done
}

# The directories a node's daemons join (see proc_start's PROC_CGROUPS).
node_daemon_cgroups() {
  local name h out=""
  name="$(trellis_node_name "$1")"
  for h in $(cgroup_hierarchies); do out+="$h/$name/daemons "; done
  printf '%s\n' "${out% }"
}

# nodes_network_up N
nodes_network_up() {
  local n="$1" i j ns veth
  if ! ip link show "$NODES_BRIDGE" >/dev/null 2>&1; then ip link add "$NODES_BRIDGE" type bridge; fi
  ip addr replace "$NODES_HOST_IP/$NODES_PREFIX" dev "$NODES_BRIDGE"
  ip link set "$NODES_BRIDGE" up
  for ((i = 1; i <= n; i++)); do
    ns="$(trellis_node_name "$i")"
    veth="$(node_veth "$i")"
    [[ -e "/run/netns/$ns" ]] || ip netns add "$ns"
    if ! ip link show "$veth" >/dev/null 2>&1; then
      ip link add "$veth" type veth peer name eth0 netns "$ns"
    fi
    ip link set "$veth" master "$NODES_BRIDGE" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr replace "$(node_ip_of "$i")/$NODES_PREFIX" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" route replace "$SERVICE_CIDR" dev eth0
    for ((j = 1; j <= n; j++)); do
      ((j == i)) || ip -n "$ns" route replace "10.244.$j.0/24" via "$(node_ip_of "$j")"
    done
    nsenter "--net=/run/netns/$ns" sysctl -qw net.ipv4.ip_forward=1
    ip route replace "10.244.$i.0/24" via "$(node_ip_of "$i")" dev "$NODES_BRIDGE"
    node_cgroups_up "$i"
  done
}

# node_freezer INDEX FROZEN|THAWED: waits until the state is reached.
node_freezer() {
  local f i
  f="$CGROUP_FS/freezer/$(trellis_node_name "$1")/freezer.state"
  [[ -f "$f" ]] || return 0
  echo "$2" >"$f"
  for ((i = 0; i < 100; i++)); do
    [[ "$(cat "$f")" == "$2" ]] && return 0
    sleep 0.05
  done
  trellis_log "warning: $(trellis_node_name "$1") did not reach $2 in 5 s"
}

# node_link INDEX up|down: the node's only link to the host and the other nodes.
node_link() { ip link set "$(node_veth "$1")" "$2" 2>/dev/null || true; }

# node_state INDEX: Running, Stopped (frozen and cut) or Missing.
node_state() {
  local f
  f="$CGROUP_FS/freezer/$(trellis_node_name "$1")/freezer.state"
  [[ -f "$f" ]] || {
    echo Missing
    return
  }
  if [[ "$(cat "$f")" == THAWED ]]; then echo Running; else echo Stopped; fi
}

# Every node namespace and cgroup, whatever the recorded count (a crash may have lost it).
nodes_present() {
  {
    ip netns list 2>/dev/null | awk '$1 ~ /^trellis-node-[0-9]+$/ {print $1}'
    find "$CGROUP_FS"/*/ -maxdepth 1 -name 'trellis-node-*' -printf '%f\n' 2>/dev/null
  } | sed 's/^trellis-node-//' | sort -un
}

# Processes left in a node's cgroups (pods and daemons).
node_pids() {
  find "$CGROUP_FS/pids/$(trellis_node_name "$1")" -name cgroup.procs -exec cat {} + 2>/dev/null || true
}

# nodes_network_down: thaws and removes every node namespace, the bridge and its routes.
nodes_network_down() {
  local i ns
  for i in $(nodes_present); do
    ns="$(trellis_node_name "$i")"
    if [[ -e "/run/netns/$ns" ]]; then
      trellis_log "deleting network namespace $ns"
      ip netns delete "$ns" || true
    fi
    ip link delete "$(node_veth "$i")" 2>/dev/null || true
  done
  if ip link show "$NODES_BRIDGE" >/dev/null 2>&1; then
    trellis_log "deleting bridge $NODES_BRIDGE"
    ip link delete "$NODES_BRIDGE"
  fi
}

# nodes_cgroups_down: a node's cgroups, leaves first (after its processes are gone).
nodes_cgroups_down() {
  local i h top
  for i in $(nodes_present); do
    # runc mirrors pod cgroups into the cgroup2 mount of a hybrid host too.
    for h in $(cgroup_hierarchies) "$CGROUP_FS/unified"; do
      top="$h/$(trellis_node_name "$i")"
      [[ -d "$top" ]] || continue
      find "$top" -depth -type d -exec rmdir {} \; 2>/dev/null || true
      [[ ! -d "$top" ]] || trellis_log "warning: could not remove cgroup $top (still in use?)"
    done
  done
}
