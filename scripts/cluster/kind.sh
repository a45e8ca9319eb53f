#!/usr/bin/env bash
# For machines with Docker: a kind cluster instead of the embedded one, with the runtime image loaded.
#   kind.sh up      create the cluster (if missing) and load localhost/trellis-runtime:dev
#   kind.sh load    load the runtime image again after `npm run images`
#   kind.sh down    delete the cluster
# The image is taken from Docker if it is there, else from $TRELLIS_RUNTIME_ARCHIVE (an image tar).
# Afterwards:  export TRELLIS_KUBECONFIG="$TRELLIS_CLUSTER_DIR/kind.kubeconfig"
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

NAME="${TRELLIS_KIND_NAME:-trellis}"
NODE_IMAGE="kindest/node:${K8S_VERSION%.*}.0" # same minor as the embedded cluster
IMAGE="localhost/trellis-runtime:dev"
KIND_KUBECONFIG="$TRELLIS_CLUSTER_DIR/kind.kubeconfig"

for tool in docker kind; do
  command -v "$tool" >/dev/null || trellis_die "kind.sh needs '$tool' on PATH"
done

load() {
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    kind load docker-image "$IMAGE" --name "$NAME"
  elif [[ -n "${TRELLIS_RUNTIME_ARCHIVE:-}" ]]; then
    kind load image-archive "$TRELLIS_RUNTIME_ARCHIVE" --name "$NAME"
  else
    trellis_die "image $IMAGE not in Docker and TRELLIS_RUNTIME_ARCHIVE not set"
  fi
}

case "${1:-up}" in
  up)
    mkdir -p "$TRELLIS_CLUSTER_DIR"
    if ! kind get clusters | grep -qx "$NAME"; then
      kind create cluster --name "$NAME" --image "$NODE_IMAGE" --kubeconfig "$KIND_KUBECONFIG" --wait 120s
    else
      kind export kubeconfig --name "$NAME" --kubeconfig "$KIND_KUBECONFIG"
    fi
    load
    echo "$KIND_KUBECONFIG"
    ;;
  load) load ;;
  down) kind delete cluster --name "$NAME" ;;
  *) trellis_die "kind.sh: unknown command '$1' (use up, load or down)" ;;
esac
