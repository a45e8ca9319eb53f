#!/usr/bin/env bash
# Starts the local single-node cluster (containerd, etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet) as background processes under $TRELLIS_CLUSTER_DIR and waits until the
# apiserver is ready, the node is Ready and the default ServiceAccount exists.
# Builds the binaries on first use. Does nothing when the cluster is already up and healthy.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/env.sh"
. "$HERE/lib/proc.sh"
. "$HERE/lib/pki.sh"
. "$HERE/lib/config.sh"

[[ "$(id -u)" == 0 ]] || trellis_die "up.sh must run as root (containerd, kubelet, network namespaces)"
# Unix socket paths are limited to 108 bytes.
((${#CONTAINERD_ADDRESS} <= 100)) ||
  trellis_die "TRELLIS_CLUSTER_DIR is too long for a unix socket path ($CONTAINERD_ADDRESS): pick a shorter directory"
cluster_lock
T0=$SECONDS
ADMIN_KUBECONFIG="$TRELLIS_CLUSTER_DIR/kubeconfig"
KUBECTL="$TRELLIS_ROOT/.tools/bin/kubectl"
NODE_NAME="$(hostname | tr '[:upper:]' '[:lower:]' | sed 's/[^a-z0-9.-]/-/g')"
# Host sysctls the kubelet and the CNI bridge set; saved here and restored by down.sh.
SAVED_SYSCTLS="kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward"

k() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" --request-timeout=5s "$@"; }
apiserver_ready() { [[ "$(k get --raw /readyz 2>/dev/null)" == ok ]]; }
node_ready() {
  [[ "$(k get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}
default_sa() { k -n default get serviceaccount default; }
all_alive() {
  local c
  for c in $TRELLIS_COMPONENTS; do proc_pid "$c" >/dev/null || return 1; done
}
any_alive() {
  local c
  for c in $TRELLIS_COMPONENTS; do proc_pid "$c" >/dev/null && return 0; done
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

healthy() { apiserver_ready && node_ready; }
if all_alive; then
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
for b in $TRELLIS_COMPONENTS etcdctl crictl; do
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
if [[ ! -f "$TRELLIS_RUN_DIR/sysctl.saved" ]]; then
  for s in $SAVED_SYSCTLS; do printf '%s=%s\n' "$s" "$(sysctl -n "$s")"; done >"$TRELLIS_RUN_DIR/sysctl.saved"
fi
# The kubelet refuses a loopback node IP, so the pod bridge is created up front and its gateway
# address is the node's InternalIP: local to this machine, independent of its real network.
if ! ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
  ip link add "$CNI_BRIDGE" type bridge
fi
ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$CNI_BRIDGE"
ip link set "$CNI_BRIDGE" up

pki_setup "$NODE_NAME" "$NODE_IP"
write_containerd_config
write_cni_config
write_crictl_config
write_kubelet_config "$NODE_NAME"
STARTED=()

# --- containerd ---
proc_start containerd "$(command -v containerd)" --config "$TRELLIS_CLUSTER_DIR/containerd/config.toml"
STARTED+=(containerd)
CTR=(ctr --address "$CONTAINERD_ADDRESS" --namespace k8s.io)
await "containerd is serving" 30 "${CTR[@]}" version
if ! "${CTR[@]}" images ls -q | grep -qxF "$PAUSE_IMAGE"; then
  "${CTR[@]}" images import "$(trellis_pause_archive)" >/dev/null
  trellis_log "imported sandbox image $PAUSE_IMAGE"
fi
# Sandboxes that survived a crash in containerd's kept metadata belong to no pod of this cluster.
cri_remove_pods

# --- etcd: state is thrown away on down, so fsync buys nothing here ---
proc_start etcd "$(trellis_bin etcd)" --name trellis --data-dir "$TRELLIS_CLUSTER_DIR/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster trellis=http://127.0.0.1:2380 --unsafe-no-fsync --log-level warn
STARTED+=(etcd)

# --- kube-apiserver ---
proc_start kube-apiserver "$(trellis_bin kube-apiserver)" \
  --bind-address=127.0.0.1 --secure-port=6443 --advertise-address="$NODE_IP" \
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
  --profiling=false --v=1
STARTED+=(kube-apiserver)

# --- kubelet: started alongside the apiserver; it retries registration until the API answers ---
proc_start kubelet "$(trellis_bin kubelet)" \
  --config="$TRELLIS_CLUSTER_DIR/kubelet-config.yaml" \
  --kubeconfig="$TRELLIS_CLUSTER_DIR/kubelet.kubeconfig" \
  --root-dir="$TRELLIS_CLUSTER_DIR/kubelet" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
STARTED+=(kubelet)

await "kube-apiserver /readyz ok" 60 apiserver_ready

# Client rate limits well above the defaults (20/30): the namespace controller alone makes a
# hundred calls to empty a namespace, and tests create and delete one per test.
proc_start kube-controller-manager "$(trellis_bin kube-controller-manager)" \
  --kubeconfig="$TRELLIS_CLUSTER_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$TRELLIS_CLUSTER_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$TRELLIS_CLUSTER_DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --cluster-name=trellis \
  --kube-api-qps=200 --kube-api-burst=400 \
  --profiling=false --v=1
STARTED+=(kube-controller-manager)

proc_start kube-scheduler "$(trellis_bin kube-scheduler)" \
  --kubeconfig="$TRELLIS_CLUSTER_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$TRELLIS_CLUSTER_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig="$TRELLIS_CLUSTER_DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
STARTED+=(kube-scheduler)

await "node $NODE_NAME Ready" 90 node_ready
await "ServiceAccount default/default exists" 60 default_sa

trellis_log "cluster up in $((SECONDS - T0)) s; logs: $TRELLIS_LOG_DIR"
echo "$ADMIN_KUBECONFIG"
