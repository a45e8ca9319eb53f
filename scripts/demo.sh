#!/usr/bin/env bash
# The demo on a fresh machine: local cluster up, runtime image built and loaded, the chart
# installed, the seed applications applied, one invoked through the HTTP API with the kubectl
# plugin, and where to look next. Idempotent: run it again to invoke again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RELEASE=trellis
OPERATOR_NS=trellis-system
DEMO_NS=trellis-demo
HTTP_PORT=${TRELLIS_DEMO_HTTP_PORT:-8080}
METRICS_PORT=${TRELLIS_DEMO_METRICS_PORT:-9090}
RUNTIME_PORT=${TRELLIS_DEMO_RUNTIME_PORT:-8081}
started=$(date +%s)
step() { printf '\n\033[1m[demo %4ss] %s\033[0m\n' "$(( $(date +%s) - started ))" "$*"; }

step "Debian packages (containerd, runc, CNI, buildah, debootstrap, ...)"
bash scripts/cluster/deps.sh
if [ ! -d node_modules ]; then
  step "npm ci"
  npm ci --no-audit --no-fund
fi
step "kubectl and helm"
bash scripts/tools/install.sh
step "local cluster (the first run builds etcd and Kubernetes from their Go modules: 10-20 min)"
bash scripts/cluster/up.sh
# shellcheck source=cluster/env.sh
source scripts/cluster/env.sh
step "runtime image (buildah, loaded into the cluster's containerd)"
bash scripts/images/build.sh

step "CRDs and the Helm chart (release $RELEASE in namespace $OPERATOR_NS, watching $DEMO_NS)"
# Blobs and request state in the cluster's object store (SeaweedFS, started by up.sh), whose
# endpoint and keys up.sh wrote to s3.env: the keys go into a Secret the chart reads.
# shellcheck disable=SC1091
source "$TRELLIS_RUN_DIR/s3.env"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl create namespace "$DEMO_NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create namespace "$OPERATOR_NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create secret generic trellis-s3-credentials -n "$OPERATOR_NS" \
  --from-literal=AWS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" --from-literal=AWS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
helm upgrade --install "$RELEASE" charts/trellis --namespace "$OPERATOR_NS" --create-namespace \
  --set crds.install=false --set replicaCount=1 \
  --set hostNetwork=true --set kubernetesService.host=127.0.0.1 --set kubernetesService.port=6443 \
  --set image.repository=localhost/trellis-runtime --set image.tag=dev --set image.pullPolicy=Never \
  --set ports.http="$HTTP_PORT" --set ports.runtimeApi="$RUNTIME_PORT" --set ports.metrics="$METRICS_PORT" \
  --set "operator.watchNamespaces={$DEMO_NS}" \
  --set blobs.backend=s3 --set blobs.s3.bucket="$TRELLIS_S3_BUCKET" --set blobs.s3.endpoint="$TRELLIS_S3_ENDPOINT" \
  --set blobs.s3.forcePathStyle=true --set blobs.s3.prefix=demo/ --set blobs.s3.credentialsSecret=trellis-s3-credentials \
  --wait --timeout 180s
kubectl rollout status -n "$OPERATOR_NS" "deploy/$RELEASE" --timeout=120s

step "the seed applications (examples/*.yaml, inline source)"
kubectl apply -n "$DEMO_NS" -f examples/
kubectl wait -n "$DEMO_NS" --for=condition=Ready --timeout=120s application/ex03-gather
kubectl get applications -n "$DEMO_NS"

step "an invoker: a ServiceAccount that RBAC allows to create FunctionCalls in $DEMO_NS"
kubectl create serviceaccount -n "$DEMO_NS" demo-invoker --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create role -n "$DEMO_NS" demo-invoker --verb=create,get,list --resource=functioncalls.trellis.dev,applications.trellis.dev \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create rolebinding -n "$DEMO_NS" demo-invoker --role=demo-invoker --serviceaccount="$DEMO_NS:demo-invoker" \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
TRELLIS_TOKEN=$(kubectl create token -n "$DEMO_NS" demo-invoker --duration=1h --audience=trellis)
export TRELLIS_TOKEN TRELLIS_API_URL="http://127.0.0.1:$HTTP_PORT"

step "kubectl trellis invoke ex03-gather --input '\"Ada\"' (through the HTTP API)"
export PATH="$ROOT/bin:$PATH"
out=$(kubectl trellis invoke ex03-gather -n "$DEMO_NS" --input '"Ada"' | tee /dev/stderr)
# The newest request (a root call: no parent) of the application.
request=$(kubectl get fc -n "$DEMO_NS" -l trellis.dev/application=ex03-gather -o json | python3 -c '
import json, sys
roots = [i for i in json.load(sys.stdin)["items"] if not i["spec"].get("parent")]
print(max(roots, key=lambda i: i["metadata"]["creationTimestamp"])["metadata"]["name"] if roots else "")')

step "done: the output is ${out##*$'\n'}"
cat <<TXT
Where to look next:
  source scripts/cluster/env.sh                 # KUBECONFIG and kubectl/helm on PATH
  kubectl get applications,fc -n $DEMO_NS        # every call is a FunctionCall
  PATH=\$PWD/bin:\$PATH kubectl trellis graph $request -n $DEMO_NS
  kubectl trellis invoke ex04-map-reduce -n $DEMO_NS --input '[1,2,3,4]'
  curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep ^trellis_function_calls_total
  curl -s http://127.0.0.1:$HTTP_PORT/openapi.json
  npm run cluster:down                          # stop the cluster
TXT
