# Config files for containerd, CNI and the kubelet (sourced by up.sh). Rewritten on every up.

CNI_BRIDGE="trellis0"
POD_CIDR="10.244.0.0/24"
NODE_IP="10.244.0.1" # the bridge's address doubles as the node's InternalIP (see up.sh)
SERVICE_CIDR="10.96.0.0/16"

write_containerd_config() {
  local d="$TRELLIS_CLUSTER_DIR/containerd"
  mkdir -p "$d/root" "$d/state" "$TRELLIS_CLUSTER_DIR/cni/net.d"
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
# Keep containerd's own OOM score: root here lacks CAP_SYS_RESOURCE to lower it.
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$CONTAINERD_ADDRESS"

[ttrpc]
  address = "$CONTAINERD_ADDRESS.ttrpc"

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
    conf_dir = "$TRELLIS_CLUSTER_DIR/cni/net.d"
    max_conf_num = 1
EOF
}

# crictl reads this (--config) in down.sh; handy for debugging too.
write_crictl_config() {
  cat >"$TRELLIS_CLUSTER_DIR/crictl.yaml" <<EOF
runtime-endpoint: unix://$CONTAINERD_ADDRESS
image-endpoint: unix://$CONTAINERD_ADDRESS
timeout: 30
EOF
}

write_cni_config() {
  mkdir -p "$TRELLIS_CLUSTER_DIR/cni/net.d" "$TRELLIS_CLUSTER_DIR/cni/ipam"
  # ipMasq off: pods here talk only to the node, and no NAT rules are left on the host.
  cat >"$TRELLIS_CLUSTER_DIR/cni/net.d/10-trellis.conflist" <<EOF
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
        "dataDir": "$TRELLIS_CLUSTER_DIR/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$NODE_IP" }]],
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
  local k="$TRELLIS_CLUSTER_DIR/kubelet" node="$1"
  mkdir -p "$k" "$TRELLIS_CLUSTER_DIR/pod-logs"
  cat >"$TRELLIS_CLUSTER_DIR/kubelet-config.yaml" <<EOF
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
containerRuntimeEndpoint: unix://$CONTAINERD_ADDRESS
cgroupDriver: cgroupfs
cgroupRoot: /
failSwapOn: false
podLogsDir: $TRELLIS_CLUSTER_DIR/pod-logs
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
EOF
}
