#!/usr/bin/env bash
# Starts the local cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, and per
# node containerd + kubelet, + kube-proxy with several nodes) as background processes under
# $TRELLIS_CLUSTER_DIR and waits until the apiserver is ready, every node is Ready and the default
# ServiceAccount exists. TRELLIS_NODES=N (default 1) picks the node count: one node shares the
# host's network; two or more each get a network namespace (lib/nodes.sh).
# Builds the binaries on first use. Does nothing when the cluster is already up and healthy.
# TRELLIS_APISERVER_PROFILING=true serves the apiserver's /debug/pprof (to see what limits a bench figure).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/env.sh"
. "$HERE/lib/proc.sh"
. "$HERE/lib/pki.sh"
. "$HERE/lib/config.sh"
. "$HERE/lib/nodes.sh"

[[ "$(id -u)" == 0 ]] || trellis_die "up.sh must run as root (containerd, kubelet, network namespaces)"
# Unix socket paths are limited to 108 bytes.
((${#CONTAINERD_ADDRESS} <= 100)) ||
  trellis_die "TRELLIS_CLUSTER_DIR is too long for a unix socket path ($CONTAINERD_ADDRESS): pick a shorter directory"
WANT_NODES="${TRELLIS_NODES:-1}"
[[ "$WANT_NODES" =~ ^[1-9]$ ]] || trellis_die "TRELLIS_NODES must be a whole number from 1 to 9, got '$WANT_NODES'"
cluster_lock
T0=$SECONDS
ADMIN_KUBECONFIG="$TRELLIS_CLUSTER_DIR/kubeconfig"
KUBECTL="$TRELLIS_ROOT/.tools/bin/kubectl"
# Host sysctls the kubelet and the CNI bridge set; saved here and restored by down.sh.
SAVED_SYSCTLS="kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward"

k() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=5s "$@"; }
apiserver_ready() { [[ "$(k get --raw /readyz 2>/dev/null)" == ok ]]; }
node_ready() {
  [[ "$(k get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
node_names() {
  local i
  if ((WANT_NODES == 1)); then (node_context 0 && echo "$NODE_NAME"); else
    for ((i = 1; i <= WANT_NODES; i++)); do trellis_node_name "$i"; done
  fi
}
nodes_ready() {
  local n
  for n in $(node_names); do node_ready "$n" || return 1; done
}
default_sa() { k -n default get serviceaccount default; }
all_alive() {
  local c
  for c in $(trellis_components); do proc_pid "$c" >/dev/null || return 1; done
}
any_alive() {
  local c
  for c in $(trellis_components); do proc_pid "$c" >/dev/null && return 0; done
  return 1
}

# Polls a condition while checking that every started component is still alive.
await() { # await DESCRIPTION TIMEOUT CHECK...
  local what="$1" timeout="$2" start=$SECONDS c
  shift 2
  until "$@" >/dev/null 2>&1; do
    for c in "${STARTED[@]}"; do
      proc_pid "$c" >/dev/null || {
        tail -n 25 "$TRELLIS_LOG_DIR/$c.log" >&2 || true
        trellis_die "$c exited while waiting for $what; log: $TRELLIS_LOG_DIR/$c.log"
      }
    done
    if ((SECONDS - start >= timeout)); then
      trellis_log "logs: $(trellis_log_paths | tr '\n' ' ')"
      trellis_die "timed out after ${timeout}s waiting for $what"
    fi
    sleep 0.25
  done
  trellis_log "$what ($((SECONDS - T0)) s)"
}

[[ -x "$KUBECTL" ]] || bash "$TRELLIS_ROOT/scripts/tools/install.sh"

healthy() { apiserver_ready && nodes_ready; }
if [[ -s "$TRELLIS_RUN_DIR/nodes" && "$(trellis_nodes)" != "$WANT_NODES" ]]; then
  trellis_log "the running cluster has $(trellis_nodes) node(s), $WANT_NODES wanted: restarting it"
  bash "$HERE/down.sh"
elif all_alive; then
  # A busy cluster can answer slowly: give it time before calling it broken and restarting it.
  if wait_for "the running cluster to answer healthy" 60 healthy; then
    trellis_log "cluster already running"
    echo "$ADMIN_KUBECONFIG"
    exit 0
  fi
  trellis_log "cluster processes are running but not healthy after 60 s: restarting the cluster"
fi
if any_alive || [[ -d "$TRELLIS_RUN_DIR" ]]; then
  trellis_log "partial or stale cluster found: cleaning it up first"
  bash "$HERE/down.sh"
fi

# --- binaries (first use: packages + build, which takes a while) ---
need_build=0
for b in $TRELLIS_CONTROL_PLANE kubelet kube-proxy etcdctl crictl; do
  [[ "$b" == containerd ]] && continue
  [[ -x "$(trellis_bin "$b")" ]] || need_build=1
done
[[ -f "$(trellis_pause_archive)" ]] || need_build=1
command -v containerd >/dev/null && command -v runc >/dev/null && [[ -x /usr/lib/cni/bridge ]] || need_build=1
if ((need_build)); then
  trellis_log "first use: installing packages and building binaries (log: $TRELLIS_CACHE/build.log)"
  mkdir -p "$TRELLIS_CACHE"
  bash "$HERE/deps.sh"
  bash "$HERE/build.sh" all 2>&1 | tee "$TRELLIS_CACHE/build.log"
fi

# --- host preparation ---
mkdir -p "$TRELLIS_RUN_DIR" "$TRELLIS_LOG_DIR"
echo "$WANT_NODES" >"$TRELLIS_RUN_DIR/nodes"
if [[ ! -f "$TRELLIS_RUN_DIR/sysctl.saved" ]]; then
  for s in $SAVED_SYSCTLS; do printf '%s=%s\n' "$s" "$(sysctl -n "$s")"; done >"$TRELLIS_RUN_DIR/sysctl.saved"
fi
if ((WANT_NODES == 1)); then
  NODE_INDEXES=(0)
  node_context 0
  # The kubelet refuses a loopback node IP, so the pod bridge is created up front and its gateway
  # address is the node's InternalIP: local to this machine, independent of its real network.
  if ! ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
    ip link add "$CNI_BRIDGE" type bridge
  fi
  ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$CNI_BRIDGE"
  ip link set "$CNI_BRIDGE" up
  APISERVER_HOST=127.0.0.1
  ADVERTISE_IP="$NODE_IP"
else
  NODE_INDEXES=($(seq 1 "$WANT_NODES"))
  nodes_network_up "$WANT_NODES"
  # Nodes reach the API server on the host end of their bridge: loopback is each node's own.
  APISERVER_HOST="$NODES_HOST_IP"
  ADVERTISE_IP="$NODES_HOST_IP"
fi

pki_setup
for i in "${NODE_INDEXES[@]}"; do
  node_context "$i"
  pki_node
  write_containerd_config
  write_cni_config
  write_crictl_config
  write_kubelet_config
  ((i == 0)) || write_kube_proxy_config
done
STARTED=()

# node_env INDEX: runs the rest of the command line with the node's namespace and cgroups.
node_env() {
  local i="$1"
  shift
  if ((i == 0)); then "$@"; else PROC_NETNS="$(trellis_node_name "$i")" PROC_CGROUPS="$(node_daemon_cgroups "$i")" "$@"; fi
}

# --- containerd, one per node ---
for i in "${NODE_INDEXES[@]}"; do
  node_context "$i"
  node_env "$i" proc_start "containerd$NODE_SUFFIX" "$(command -v containerd)" --config "$NODE_DIR/containerd/config.toml"
  STARTED+=("containerd$NODE_SUFFIX")
done
for i in "${NODE_INDEXES[@]}"; do
  node_context "$i"
  CTR=(ctr --address "$NODE_SOCK" --namespace k8s.io)
  await "containerd$NODE_SUFFIX is serving" 30 "${CTR[@]}" version
  if ! "${CTR[@]}" images ls -q | grep -qxF "$PAUSE_IMAGE"; then
    "${CTR[@]}" images import "$(trellis_pause_archive)" >/dev/null
    trellis_log "imported sandbox image $PAUSE_IMAGE into containerd$NODE_SUFFIX"
  fi
  # Sandboxes that survived a crash in containerd's kept metadata belong to no pod of this cluster.
  cri_remove_pods "$NODE_DIR"
done

# --- etcd: state is thrown away on down, so fsync buys nothing here ---
proc_start etcd "$(trellis_bin etcd)" --name trellis --data-dir "$TRELLIS_CLUSTER_DIR/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster trellis=http://127.0.0.1:2380 --unsafe-no-fsync --log-level warn
STARTED+=(etcd)

# --- SeaweedFS: the object store (S3 gateway) for blobs, on the address pods and the host share ---
# One node: the pod bridge's gateway; several: the host end of the node links. Fresh keys per
# cluster, written with the endpoint to $TRELLIS_RUN_DIR/s3.env for the chart, tests and demo.
if ((WANT_NODES == 1)); then S3_IP="$NODE_IP"; else S3_IP="$NODES_HOST_IP"; fi
S3_DIR="$TRELLIS_CLUSTER_DIR/seaweedfs"
mkdir -p "$S3_DIR/data"
S3_ACCESS_KEY="trellis$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
S3_SECRET_KEY="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
umask_was="$(umask)" && umask 077
printf '{"identities":[{"name":"trellis","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
  "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$S3_DIR/s3.json"
{
  printf 'TRELLIS_S3_ENDPOINT=http://%s:%s\n' "$S3_IP" "$TRELLIS_S3_PORT"
  printf 'TRELLIS_S3_BUCKET=%s\nTRELLIS_S3_REGION=us-east-1\n' "$TRELLIS_S3_BUCKET"
  printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY"
} >"$TRELLIS_RUN_DIR/s3.env"
umask "$umask_was"
# Ports (each with its gRPC port one above, clear of the 18080-18099 and 28080-28099 the suites use):
# master 19333, volume 19380, filer 19888, S3 $TRELLIS_S3_PORT.
proc_start seaweedfs "$(trellis_bin weed)" server -dir="$S3_DIR/data" -ip="$S3_IP" -ip.bind="$S3_IP" \
  -master.port=19333 -master.port.grpc=19334 -master.volumeSizeLimitMB=1024 \
  -volume.port=19380 -volume.port.grpc=19381 -volume.max=0 \
  -filer -filer.port=19888 -filer.port.grpc=19889 \
  -s3 -s3.port="$TRELLIS_S3_PORT" -s3.port.grpc="$((TRELLIS_S3_PORT + 1))" -s3.config="$S3_DIR/s3.json" -metricsPort=0
STARTED+=(seaweedfs)

# --- kube-apiserver ---
proc_start kube-apiserver "$(trellis_bin kube-apiserver)" \
  --bind-address="$APISERVER_HOST" --secure-port=6443 --advertise-address="$ADVERTISE_IP" \
  --etcd-servers=http://127.0.0.1:2379 \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --profiling="${TRELLIS_APISERVER_PROFILING:-false}" --v=1
STARTED+=(kube-apiserver)

# --- kubelets: started alongside the apiserver; they retry registration until the API answers ---
for i in "${NODE_INDEXES[@]}"; do
  node_context "$i"
  labels=()
  # Several nodes: a zone each, so topology spread and anti-affinity have something to spread over.
  ((i == 0)) || labels=(--node-labels="topology.kubernetes.io/zone=zone-$i,trellis.dev/node-index=$i")
  node_env "$i" proc_start "kubelet$NODE_SUFFIX" "$(trellis_bin kubelet)" \
    --config="$NODE_DIR/kubelet-config.yaml" \
    --kubeconfig="$NODE_DIR/kubelet.kubeconfig" \
    --root-dir="$NODE_DIR/kubelet" \
    --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" "${labels[@]}" --v=1
  STARTED+=("kubelet$NODE_SUFFIX")
done

await "kube-apiserver /readyz ok" 60 apiserver_ready


# Client rate limits well above the defaults (20/30): the namespace controller alone makes a
# hundred calls to empty a namespace, and tests create and delete one per test.
# Several nodes: a node that stops renewing its Lease is NotReady after 16 s (default 50 s), so the
# node-loss tests see taint-based eviction within a minute.
node_monitor=()
((WANT_NODES == 1)) || node_monitor=(--node-monitor-period=2s --node-monitor-grace-period=16s)
proc_start kube-controller-manager "$(trellis_bin kube-controller-manager)" \
  --kubeconfig="$TRELLIS_CLUSTER_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$TRELLIS_CLUSTER_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$TRELLIS_CLUSTER_DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --cluster-name=trellis \
  --kube-api-qps=200 --kube-api-burst=400 "${node_monitor[@]}" \
  --profiling=false --v=1
STARTED+=(kube-controller-manager)

proc_start kube-scheduler "$(trellis_bin kube-scheduler)" \
  --kubeconfig="$TRELLIS_CLUSTER_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$TRELLIS_CLUSTER_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig="$TRELLIS_CLUSTER_DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
STARTED+=(kube-scheduler)

# --- kube-proxy per node (several nodes): Service addresses route inside nodes and pods ---
for i in "${NODE_INDEXES[@]}"; do
  ((i == 0)) && continue
  node_context "$i"
  node_env "$i" proc_start "kube-proxy$NODE_SUFFIX" "$(trellis_bin kube-proxy)" \
    --config="$NODE_DIR/kube-proxy.yaml" --v=1
  STARTED+=("kube-proxy$NODE_SUFFIX")
done

for n in $(node_names); do await "node $n Ready" 90 node_ready "$n"; done
await "ServiceAccount default/default exists" 60 default_sa
# The bucket, once the S3 gateway answers (403 to an unsigned request means it is serving).
s3_serving() { [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$S3_IP:$TRELLIS_S3_PORT/")" == 403 ]]; }
await "SeaweedFS S3 gateway serving" 60 s3_serving
s3_bucket() {
  echo "s3.bucket.create -name $TRELLIS_S3_BUCKET" | "$(trellis_bin weed)" shell -master="$S3_IP:19333.19334" 2>&1 |
    grep -q "created bucket\|already exist"
}
await "bucket $TRELLIS_S3_BUCKET in SeaweedFS" 30 s3_bucket

trellis_log "cluster of $WANT_NODES node(s) up in $((SECONDS - T0)) s; logs: $TRELLIS_LOG_DIR"
echo "$ADMIN_KUBECONFIG"
