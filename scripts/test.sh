#!/usr/bin/env bash
# The whole test suite: static checks, unit, Python, then integration and end-to-end on the local
# cluster (brought up if it is not running; KUBECONFIG set by the caller selects another cluster).
# Ends with one line "N passed, N failed" summing every suite.
set -uo pipefail
cd "$(dirname "$0")/.."
results=.test-results
rm -rf "$results" && mkdir -p "$results"
status=0
step() { printf '\n=== %s ===\n' "$*"; }
record_check() { # name, exit code: static checks count as one test each
  local ok=0 bad=0; if [ "$2" -eq 0 ]; then ok=1; else bad=1; status=1; fi
  printf '{"name":"%s","passed":%d,"failed":%d}\n' "$1" "$ok" "$bad" >> "$results/checks.jsonl"
}

step "lint"; npm run -s lint; record_check lint $?
step "typecheck"; npm run -s typecheck; record_check typecheck $?
step "dependency rules (.dependency-cruiser.cjs)"; npm run -s deps:check; record_check deps $?
step "crds in sync with the zod schemas"; npm run -s crds:check; record_check crds $?
step "examples in sync with the seed files"; node scripts/examples.mjs --check; record_check examples $?

step "unit (vitest)"
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json="$results/unit.json" || status=1

step "python (pytest)"
PYTHONPATH=runtime-image/python python3 -m pytest -q runtime-image/python --junitxml="$results/python.xml" || status=1

TRELLIS_KUBECONFIG_FROM_CALLER="${KUBECONFIG:-}"
if [ -z "$TRELLIS_KUBECONFIG_FROM_CALLER" ]; then
  step "local cluster"
  npm run -s cluster:up || status=1
  # shellcheck source=cluster/env.sh
  source scripts/cluster/env.sh
  step "runtime image"
  npm run -s images || status=1
fi
export KUBECONFIG
# The suites start operators that watch every namespace; the demo's operator would act on the same
# objects, so the demo release (if any) is removed first.
if [ -x .tools/bin/helm ] && .tools/bin/helm status trellis -n trellis-system >/dev/null 2>&1; then
  step "removing the demo release (npm run demo installs it again)"
  .tools/bin/helm uninstall trellis -n trellis-system --wait >/dev/null || true
  .tools/bin/kubectl delete namespace trellis-demo --ignore-not-found --wait=false >/dev/null || true
fi
step "integration (vitest, real apiserver: $KUBECONFIG)"
npx vitest run --project integration --reporter=default --reporter=json --outputFile.json="$results/integration.json" || status=1
if compgen -G "test/e2e/*.test.ts" > /dev/null; then
  step "end to end (vitest, local cluster)"
  npx vitest run --project e2e --reporter=default --reporter=json --outputFile.json="$results/e2e.json" || status=1
  step "end to end again, against the installed Helm chart"
  # The API-fault suite needs a local operator process behind its proxy, and the chaos and failover
  # suites two replicas on distinct host ports: they run in the from-source pass only.
  TRELLIS_E2E_OPERATOR=chart npx vitest run --project e2e --reporter=default --reporter=json \
    --exclude test/e2e/api-faults.test.ts --exclude test/e2e/chaos.test.ts --exclude test/e2e/failover.test.ts \
    --outputFile.json="$results/e2e-chart.json" || status=1
fi

# Node loss, operator failover across nodes and scale-out need several nodes: on the local cluster
# only (another cluster given by KUBECONFIG has its own nodes and no node.sh), it is brought up
# again with three nodes and the runtime image loaded into each.
if [ -z "${TRELLIS_KUBECONFIG_FROM_CALLER:-}" ]; then
  step "local cluster again, with three nodes"
  npm run -s cluster:down || status=1
  TRELLIS_NODES=3 npm run -s cluster:up || status=1
  step "runtime image, into every node"
  npm run -s images || status=1
  step "three nodes (vitest, node loss and scale-out)"
  npx vitest run --project multinode --reporter=default --reporter=json \
    --outputFile.json="$results/multinode.json" || status=1
  step "cluster down leaves nothing behind (scripts/cluster/leftovers.sh)"
  npm run -s cluster:down; bash scripts/cluster/leftovers.sh; record_check leftovers $?
fi

node scripts/test-summary.mjs "$results" || status=1
exit $status
