// Scale-out: a map whose function may run more containers than one node holds spreads over the
// nodes. Each function pod requests about a third of a node's memory, so a node fits three of them
// and the eight the map asks for need all three nodes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace } from "../support/kube.js";
import { type ClusterNode, clusterNodes, countByNode, podPlaces } from "../support/nodes.js";
import { deployApp, invoke, requestCalls, waitFinished } from "../e2e/support/trellis.js";
import { type MultiNodeOperator, installMultiNodeOperator } from "./support/operator.js";

const APP = "fan-out";
const ITEMS = 24;
const MAX_CONTAINERS = 8;
const MiB = 2 ** 20;
// One call per container at a time, each a few seconds: the backlog asks for every container.
const SOURCE = `
import time
from tensorlake.applications import application, function

@function()
def work(x: int) -> int:
    time.sleep(4)
    return x * x

@application()
@function()
def fan(n: int) -> int:
    return sum(work.map(list(range(1, n + 1))))
`;

let nodes: ClusterNode[] = [];
let op: MultiNodeOperator | undefined;
let ns = "";
let perNode = 0;

/**
 * Memory of a worker container such that a node fits three pods and not four: a third of the
 * smallest node's allocatable memory, less room for the sidecar (64Mi each) and an operator
 * replica (256Mi); a fourth pod then overshoots by far more than that room.
 */
function workerMemoryMi(): number {
  const alloc = Math.min(...nodes.map((n) => n.allocatable.memory));
  return Math.floor(alloc / 3 / MiB) - 512;
}

beforeAll(async () => {
  nodes = await clusterNodes();
  if (nodes.length !== 3 || !nodes.every((n) => n.ready)) {
    throw new Error(`three Ready nodes expected: ${JSON.stringify(nodes)}`);
  }
  op = await installMultiNodeOperator();
  ns = await createNamespace("scaleout");
  const memory = workerMemoryMi();
  perNode = Math.floor(Math.min(...nodes.map((n) => n.allocatable.memory)) / ((memory + 64) * MiB));
  await deployApp(ns, APP, SOURCE, "fan", {
    functions: [{ name: "work", maxContainers: MAX_CONTAINERS, concurrency: 1, resources: { memory: `${memory}Mi` } }],
  });
});
afterAll(async () => {
  // Before the operator goes: function pods drain through it on their way out.
  await deleteNamespace(ns, 180_000);
  await op?.uninstall();
});

describe("scale-out over the nodes", () => {
  it(`a map with maxContainers ${MAX_CONTAINERS} above one node's capacity spreads over the nodes`, async () => {
    const t0 = Date.now();
    const req = await invoke(ns, APP, "fan", [ITEMS]);
    // Where each pod of `work` ran, and the most that ran on one node at once.
    const podNode = new Map<string, string>();
    let mostOnOneNode = 0;
    let mostAtOnce = 0;
    let finished = false;
    const watching = (async () => {
      while (!finished) {
        const pods = (await podPlaces(ns, "trellis.dev/function=work")).filter((p) => !p.deleting);
        for (const p of pods) if (p.node) podNode.set(p.name, p.node);
        const running = pods.filter((p) => p.phase === "Running");
        mostAtOnce = Math.max(mostAtOnce, running.length);
        mostOnOneNode = Math.max(mostOnOneNode, ...countByNode(running).values());
        await new Promise((r) => setTimeout(r, 1_000));
      }
    })();
    const status = await waitFinished(ns, req, 240_000).finally(() => (finished = true));
    await watching;
    const wallMs = Date.now() - t0;

    // The map call itself is a call of `work` too, run by no pod: the items are the ones with a pod.
    const calls = (await requestCalls(ns, req)).filter((c) => c.fn === "work" && c.status.pod);
    const callNodes = countByNode(calls.map((c) => ({ node: podNode.get(c.status.pod ?? "") })));
    const podsPerNode = countByNode([...podNode].map(([, node]) => ({ node })));
    console.log(
      `[multinode] scale-out: ${ITEMS} items, worker memory ${workerMemoryMi()}Mi (${perNode} pods fit a node), ` +
        `pods per node ${JSON.stringify(Object.fromEntries(podsPerNode))}, calls per node ` +
        `${JSON.stringify(Object.fromEntries(callNodes))}, at most ${mostAtOnce} running at once, ` +
        `${mostOnOneNode} on one node; wall ${(wallMs / 1000).toFixed(1)} s`,
    );
    expect(status.error, JSON.stringify(status.error)).toBeUndefined();
    expect(status.output?.value).toBe((ITEMS * (ITEMS + 1) * (2 * ITEMS + 1)) / 6);
    expect(calls).toHaveLength(ITEMS);
    // The sizing holds: a node fits fewer pods than the map may run.
    expect(perNode).toBeLessThan(MAX_CONTAINERS);
    expect(mostOnOneNode).toBeLessThanOrEqual(perNode);
    // More pods ran at once than one node holds: they spread over the nodes, and so did the calls.
    expect(mostAtOnce).toBeGreaterThan(perNode);
    expect(podsPerNode.size).toBeGreaterThanOrEqual(2);
    expect(callNodes.size).toBeGreaterThanOrEqual(2);
  });
});
