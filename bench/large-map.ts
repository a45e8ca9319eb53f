// Maps past the one-object-per-call model: a 100,000-item map (items from a future of a list, so
// in shards) with the operator's RSS sampled and the request's objects in etcd counted throughout;
// and a 20,000-item map during which the operator is SIGKILLed and an item pod force-deleted,
// every item counting its executions in the request's state (at least one, at most one per attempt).
import { performance } from "node:perf_hooks";
import type { KubeClient } from "../operator/src/kube/client.js";
import { isAlreadyExists } from "../operator/src/kube/errors.js";
import type { KubeObjectWriter } from "../operator/src/kube/writer.js";
import { API_VERSION, LABEL, labelValue } from "../protocol/index.js";
import { metricsPortFor } from "../test/support/helm.js";
import { kubectl } from "../test/support/kube.js";
import type { BenchOperator } from "./bench-operator.js";
import { type Call, apiserverCallWrites, childrenOf, createRequest, deployInlineApp, waitFinished } from "./cluster.js";

export const LARGE_MAP_SOURCE = `
import time
from tensorlake.applications import RequestContext, application, function

@function()
def numbers(n: int) -> list:
    return list(range(n))

@function()
def double(x: int) -> int:
    return x * 2

@application()
@function(timeout=3600)
def large_map(n: int) -> dict:
    t0 = time.perf_counter()
    out = double.map(numbers.future(n))
    loop = time.perf_counter() - t0
    assert out == [2 * i for i in range(n)], "map output out of order"
    return {"value": len(out), "loop_s": loop}

@function()
def tick(x: int) -> int:
    state = RequestContext.get().state
    state.set(f"t{x}", state.get(f"t{x}", 0) + 1)
    return x * 3

@application()
@function(timeout=3600)
def durable_map(n: int) -> dict:
    out = tick.map(numbers.future(n))
    assert out == [3 * i for i in range(n)], "map output out of order"
    state = RequestContext.get().state
    return {"value": len(out), "runs": [state.get(f"t{x}", 0) for x in range(n)]}
`;

const MiB = 1024 * 1024;

export interface LargeMapFigures {
  items: number;
  seconds: number;
  itemsPerSecond: number;
  operatorIdleMiB: number;
  operatorPeakMiB: number;
  /** Most FunctionCalls of the request seen at once (polled every 2 s), and at the end. */
  objectsMax: number;
  objectsAtEnd: number;
  writesPerItem: number;
}

export interface DurableMapFigures {
  items: number;
  seconds: number;
  /**
   * Items that never ran, or ran more often than the attempts they started (an attempt may run
   * zero times: Running persisted, then its lease answer lost with the killed operator).
   */
  mismatched: number;
  /** Attempts started that never ran (re-queued, not re-run). */
  unrunAttempts: number;
  /** Items that ran more than once (re-run after the pod loss or the operator's restart). */
  reRun: number;
  operatorKilledAfterSucceeded: number;
  podDeleted: string;
}

/** The Application of both large maps (created once: the durable map may run without the other). */
async function deployLargeMap(writer: KubeObjectWriter, namespace: string): Promise<void> {
  const one = { minContainers: 1, maxContainers: 1 };
  await deployInlineApp(writer, namespace, {
    name: "large-map",
    entrypoint: "large_map",
    source: LARGE_MAP_SOURCE,
    functions: [
      { name: "large_map", ...one },
      { name: "durable_map", ...one },
      { name: "numbers", ...one },
      { name: "double", minContainers: 2, maxContainers: 2, concurrency: 64 },
      { name: "tick", minContainers: 2, maxContainers: 2, concurrency: 64 },
    ],
  }).catch((e: unknown) => {
    if (!isAlreadyExists(e)) throw e;
  });
}

const rssMiB = async (httpPort: number) =>
  Number(
    /^trellis_process_resident_memory_bytes (\d+)/m.exec(
      await (await fetch(`http://127.0.0.1:${metricsPortFor(httpPort)}/metrics`)).text(),
    )?.[1],
  ) / MiB;

async function objectsOf(client: KubeClient, namespace: string, request: string): Promise<number> {
  const list = await client.request<{ items: unknown[] }>(
    "GET",
    `/apis/${API_VERSION}/namespaces/${namespace}/functioncalls`,
    { query: { labelSelector: `${LABEL.request}=${labelValue(request)}` } },
  );
  return list.items.length + 1; // and the root
}

/** Samples `f` every `ms` until stopped; returns the stop function resolving when the sampler ended. */
function sampler(ms: number, f: () => Promise<void>): () => Promise<void> {
  let on = true;
  const loop = (async () => {
    while (on) {
      await f().catch(() => undefined);
      await new Promise((r) => setTimeout(r, ms));
    }
  })();
  return async () => {
    on = false;
    await loop;
  };
}

export async function largeMapFigures(
  client: KubeClient,
  writer: KubeObjectWriter,
  namespace: string,
  op: BenchOperator,
  httpPort: number,
  n: number,
): Promise<LargeMapFigures> {
  await deployLargeMap(writer, namespace);
  // Warm: pods up, code loaded.
  const warm = await createRequest(client, namespace, "large-map", "large_map", [200]);
  await waitFinished(client, namespace, warm, 300_000, op.alive);
  const operatorIdleMiB = await rssMiB(httpPort);
  let operatorPeakMiB = operatorIdleMiB;
  let objectsMax = 0;
  const w0 = await apiserverCallWrites();
  const t0 = performance.now();
  const name = await createRequest(client, namespace, "large-map", "large_map", [n]);
  const stopRss = sampler(250, async () => {
    operatorPeakMiB = Math.max(operatorPeakMiB, await rssMiB(httpPort));
  });
  const stopObjects = sampler(2000, async () => {
    objectsMax = Math.max(objectsMax, await objectsOf(client, namespace, name));
  });
  let root: Call;
  try {
    root = await waitFinished(client, namespace, name, 1_800_000, op.alive);
  } finally {
    await stopRss();
    await stopObjects();
  }
  const seconds = (performance.now() - t0) / 1000;
  const out = root.status?.output?.value as { value: number } | undefined;
  if (out?.value !== n) throw new Error(`large_map returned ${JSON.stringify(root.status?.output)}`);
  const w1 = await apiserverCallWrites();
  const writes = w1.creates - w0.creates + (w1.statusPatches - w0.statusPatches) + (w1.otherWrites - w0.otherWrites);
  const objectsAtEnd = await objectsOf(client, namespace, name);
  return {
    items: n,
    seconds,
    itemsPerSecond: n / seconds,
    operatorIdleMiB,
    operatorPeakMiB,
    objectsMax: Math.max(objectsMax, objectsAtEnd),
    objectsAtEnd,
    writesPerItem: writes / n,
  };
}

export async function durableMapFigures(
  client: KubeClient,
  writer: KubeObjectWriter,
  namespace: string,
  op: BenchOperator,
  n: number,
): Promise<DurableMapFigures> {
  await deployLargeMap(writer, namespace);
  const t0 = performance.now();
  const name = await createRequest(client, namespace, "large-map", "durable_map", [n]);
  // Mid-map: a tenth of the items done.
  let succeeded: number;
  for (;;) {
    const items = (await childrenOf(client, namespace, name)).filter((c) => c.spec.function === "tick" && !c.spec.map);
    succeeded = items.filter((c) => c.status?.phase === "Succeeded").length;
    if (items.length === n && succeeded >= n / 10) break;
    if (performance.now() - t0 > 900_000) throw new Error(`durable_map: ${succeeded} of ${n} items after 900 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  await op.restart("SIGKILL");
  const pods = (await kubectl(["get", "pods", "-n", namespace, "-l", `${LABEL.function}=tick`, "-o", "name"]))
    .split("\n")
    .filter(Boolean);
  const podDeleted = pods[0] ?? "";
  if (podDeleted) await kubectl(["delete", podDeleted, "-n", namespace, "--grace-period=0", "--force"]);
  const root = await waitFinished(client, namespace, name, 1_800_000, op.alive);
  const seconds = (performance.now() - t0) / 1000;
  const out = root.status?.output?.value as { value: number; runs: number[] } | undefined;
  if (out?.value !== n) throw new Error(`durable_map returned ${JSON.stringify(root.status?.output).slice(0, 300)}`);
  const items = (await childrenOf(client, namespace, name)).filter((c) => c.spec.function === "tick" && !c.spec.map);
  const attempts = new Map(items.map((c) => [c.spec.sequence!, c.status?.attempts ?? 0]));
  let mismatched = 0;
  let reRun = 0;
  let unrunAttempts = 0;
  out.runs.forEach((runs, x) => {
    const a = attempts.get(x) ?? 0;
    if (runs < 1 || runs > a) mismatched++;
    else unrunAttempts += a - runs;
    if (runs > 1) reRun++;
  });
  return { items: n, seconds, mismatched, reRun, unrunAttempts, operatorKilledAfterSucceeded: succeeded, podDeleted };
}

export function printLargeMapFigures(f: LargeMapFigures): void {
  const r = (x: number) => Math.round(x * 10) / 10;
  console.log(`\nA map of ${f.items} items (in shards; items from a future of a list)`);
  console.log(`  completed in ${r(f.seconds)} s: ${Math.round(f.itemsPerSecond)} items/s`);
  console.log(
    `  operator RSS: idle ${r(f.operatorIdleMiB)} MiB, peak ${r(f.operatorPeakMiB)} MiB   ` +
      `<= 256 MiB: ${f.operatorPeakMiB <= 256 ? "met" : "NOT met"}`,
  );
  console.log(
    `  FunctionCalls of the request in etcd: at most ${f.objectsMax} (at the end ${f.objectsAtEnd})   ` +
      `<= 1000: ${f.objectsMax <= 1000 ? "met" : "NOT met"}`,
  );
  console.log(
    `  FunctionCall writes per item (apiserver_request_total): ${Math.round(f.writesPerItem * 1000) / 1000}   ` +
      `<= 0.05: ${f.writesPerItem <= 0.05 ? "met" : "NOT met"}`,
  );
}

export function printDurableMapFigures(f: DurableMapFigures): void {
  console.log(
    `\nA map of ${f.items} items, the operator SIGKILLed after ${f.operatorKilledAfterSucceeded} had succeeded ` +
      `and item pod ${f.podDeleted || "(none found)"} force-deleted`,
  );
  console.log(
    `  completed in ${Math.round(f.seconds * 10) / 10} s; ${f.reRun} items ran more than once, ` +
      `${f.unrunAttempts} attempts were re-queued before they ran`,
  );
  console.log(
    `  items that never ran or ran more often than their attempts: ${f.mismatched}   ` +
      `at most once per attempt, none lost: ${f.mismatched === 0 ? "met" : "NOT met"}`,
  );
}
