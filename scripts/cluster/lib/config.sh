# Config files for containerd, CNI, the kubelet and kube-proxy (sourced by up.sh). Rewritten on
# every up. Each writer works on the node selected by node_context.

CNI_BRIDGE="trellis0"
SERVICE_CIDR="10.96.0.0/16"
CLUSTER_CIDR="10.244.0.0/16"
# Two or more nodes: the host end of the nodes' bridge; the API server listens there.
NODES_BRIDGE="trellisn0"
NODES_HOST_IP="10.243.0.1"
NODES_PREFIX="24"

node_ip_of() { printf '10.243.0.%s\n' "$((10 + $1))"; }

# node_context INDEX: selects a node for the writers and starters. 0 is the single node on the
# host's network (its pod bridge's address doubles as its InternalIP: the kubelet refuses a
# loopback one); 1..N are nodes in network namespaces of their own.
node_context() {
  NODE_INDEX="$1"
  if [[ "$NODE_INDEX" == 0 ]]; then
    NODE_NAME="$(hostname | tr '[:upper:]' '[:lower:]' | sed 's/[^a-z0-9.-]/-/g')"
    NODE_DIR="$TRELLIS_CLUSTER_DIR"
    NODE_IP="10.244.0.1"
    POD_CIDR="10.244.0.0/24"
    POD_GATEWAY="$NODE_IP"
    NODE_NETNS=""
    NODE_CGROUP="/"
    NODE_SUFFIX=""
  else
    NODE_NAME="$(trellis_node_name "$NODE_INDEX")"
    NODE_DIR="$(trellis_node_dir "$NODE_INDEX")"
    NODE_IP="$(node_ip_of "$NODE_INDEX")"
    POD_CIDR="10.244.$NODE_INDEX.0/24"
    POD_GATEWAY="10.244.$NODE_INDEX.1"
    NODE_NETNS="$NODE_NAME"
    NODE_CGROUP="/$NODE_NAME"
    NODE_SUFFIX="-$NODE_INDEX"
  fi
  NODE_SOCK="$(trellis_containerd_address "$NODE_INDEX")"
}

write_containerd_config() {
  local d="$NODE_DIR/containerd"
  mkdir -p "$d/root" "$d/state" "$NODE_DIR/cni/net.d"
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
# Keep containerd's own OOM score: root here lacks CAP_SYS_RESOURCE to lower it.
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$NODE_SOCK"

[ttrpc]
  address = "$NODE_SOCK.ttrpc"

[debug]
  level = "info"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Clamp pod OOM scores (sandbox -998, Guaranteed -997) to containerd's own: lowering needs
  # CAP_SYS_RESOURCE, which root does not have on these machines.
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  # Pod network namespaces live under our state dir, not /run/netns next to anybody else's.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        # runc state of our containers stays under our dir, apart from any other containerd.
        Root = "$d/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
    max_conf_num = 1
EOF
}

# crictl reads this (--config) in down.sh; handy for debugging too.
write_crictl_config() {
  cat >"$NODE_DIR/crictl.yaml" <<EOF
runtime-endpoint: unix://$NODE_SOCK
image-endpoint: unix://$NODE_SOCK
timeout: 30
EOF
}

write_cni_config() {
  mkdir -p "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam"
  # ipMasq off: pods talk only to nodes and each other, and no NAT rules are left on the host.
  cat >"$NODE_DIR/cni/net.d/10-trellis.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "trellis",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$POD_GATEWAY" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
  # The loopback plugin is run by containerd's CRI itself for every sandbox.
}

write_kubelet_config() {
  local node="$NODE_NAME" lease=40
  mkdir -p "$NODE_DIR/kubelet" "$NODE_DIR/pod-logs"
  # Several nodes: renew the node Lease every 5 s, so a stopped node goes NotReady within the
  # controller-manager's short grace period.
  [[ "$NODE_INDEX" == 0 ]] || lease=20
  cat >"$NODE_DIR/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving-$node.crt
tlsPrivateKeyFile: $PKI/kubelet-serving-$node.key
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $PKI/ca.crt }
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$NODE_SOCK
cgroupDriver: cgroupfs
cgroupRoot: $NODE_CGROUP
failSwapOn: false
podLogsDir: $NODE_DIR/pod-logs
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
# Lowering its own OOM score needs CAP_SYS_RESOURCE, which root lacks here.
oomScoreAdj: 0
# A test bed must never evict pods or garbage-collect the locally built images.
evictionHard: { memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
imageMinimumGCAge: 87600h
maxPods: 110
serializeImagePulls: false
shutdownGracePeriod: 0s
syncFrequency: 10s
nodeStatusUpdateFrequency: 5s
fileCheckFrequency: 20s
nodeLeaseDurationSeconds: $lease
EOF
}

# kube-proxy of a node in its own network namespace: iptables rules there only. Every Service
# connection is masqueraded, so an answer from a pod on the same bridge goes back through the
# node's conntrack; conntrack sysctls are left as they are.
write_kube_proxy_config() {
  cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $TRELLIS_CLUSTER_DIR/kube-proxy.kubeconfig
mode: iptables
clusterCIDR: $CLUSTER_CIDR
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
iptables:
  masqueradeAll: true
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}
