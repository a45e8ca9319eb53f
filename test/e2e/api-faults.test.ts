// API-server fault injection: the operator (from the source tree) talks to the API server through
// a proxy that answers 429 with Retry-After, 500 and 503, delays answers, resets connections,
// loses answers after the server committed the write, and cuts watch streams, on writes, watches
// and Lease renewals. Under it, concurrent requests of the ~55-call graph all finish with the
// right output and no finished call runs again. Runs in the from-source pass only (the proxy sits
// between a local operator process and the API server; scripts/test.sh excludes this file from
// the chart pass).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FaultPlan, type FaultProxy, firstFault } from "../support/fault-proxy.js";
import { createNamespace, deleteNamespace, waitFor } from "../support/kube.js";
import { startApiProxy } from "./support/api-proxy.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { invoke } from "./support/trellis.js";
import {
  GRAPH_APP,
  type RequestFigures,
  callsByRequest,
  checkRequest,
  deployGraph,
  sumFigures,
} from "./support/workload.js";

const REQUESTS = 20;
// About one write in eight, one Lease renewal in eight, one watch in six goes wrong.
const WRITE_FAULTS = { throttle: 0.03, error500: 0.02, error503: 0.02, delay: 0.02, reset: 0.02, lostAnswer: 0.02 };
const PLAN: FaultPlan = {
  seed: 20261203,
  rates: {
    write: WRITE_FAULTS,
    lease: WRITE_FAULTS,
    // Watches are few and long: most are cut, after 1 to 10 s.
    watch: { throttle: 0.05, error500: 0.05, error503: 0.05, delay: 0.05, reset: 0.05, cutWatch: 0.4 },
  },
  delayMs: [100, 1500],
  retryAfterSeconds: 1,
  cutWatchAfterMs: [1000, 10_000],
};

let op: OperatorProcess | undefined;
let proxy: FaultProxy | undefined;
let ns = "";
let restarts = 0;

/**
 * Restarts the operator when it exits, as the kubelet would: an operator that cannot renew its
 * Lease in time (several renewals in a row lost to faults) exits by design.
 */
async function supervise(): Promise<void> {
  if (op?.alive?.() === false) {
    restarts++;
    await op.restart();
  }
}

beforeAll(async () => {
  const started = await startApiProxy(PLAN);
  proxy = started.proxy;
  op = await startOperator("api-faults", { KUBECONFIG: started.kubeconfig });
  ns = await createNamespace("faults");
  await deployGraph(ns);
});
afterAll(async () => {
  await deleteNamespace(ns);
  await op?.stop();
  await proxy?.close();
});

describe("API-server fault injection", () => {
  it(`${REQUESTS} concurrent requests of the graph finish right, with no finished call run again`, async () => {
    const t0 = Date.now();
    const seeds = Array.from({ length: REQUESTS }, (_, i) => i + 1);
    const names = await Promise.all(seeds.map((s) => invoke(ns, GRAPH_APP, "graph", [s])));
    const done = await waitFor(
      `${REQUESTS} requests to finish under API faults (operator log: ${op?.logPath})`,
      async () => {
        await supervise();
        const calls = await callsByRequest(ns);
        const roots = names.map((n) => calls.get(n)?.find((c) => c.name === n));
        const finished = roots.every((r) => ["Succeeded", "Failed", "Cancelled"].includes(r?.status.phase ?? ""));
        return finished ? calls : undefined;
      },
      240_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${op?.tail(30)}`);
    });
    const wallMs = Date.now() - t0;

    const figures: RequestFigures[] = names.map((name, i) => {
      const calls = done.get(name) ?? [];
      const root = calls.find((c) => c.name === name);
      return checkRequest(name, seeds[i]!, root?.status.output?.value, calls, undefined);
    });
    const total = sumFigures(figures);
    const counts = new Set(figures.map((f) => f.calls));
    console.log(
      `[api-faults] requests ${REQUESTS}, calls ${total.calls}, executions ${total.executions}, ` +
        `re-runs ${total.reruns} (lost attempts ${total.infrastructureFailures}), operator restarts ${restarts}, ` +
        `wall ${(wallMs / 1000).toFixed(1)} s\n` +
        `[api-faults] API requests through the proxy ${JSON.stringify(proxy!.requests)}; ` +
        `faults injected ${proxy!.totalFaults} ${JSON.stringify(proxy!.faults)}\n` +
        `[api-faults] by class ${JSON.stringify(proxy!.faultsByClass)}`,
    );
    expect(total.problems).toEqual([]);
    for (const [i, name] of names.entries()) {
      const root = done.get(name)?.find((c) => c.name === name);
      expect(root?.status.error, `${name} (seed ${seeds[i]}): ${JSON.stringify(root?.status.error)}`).toBeUndefined();
    }
    // Every request made the same calls: a call duplicated by a lost answer would show here.
    expect([...counts]).toHaveLength(1);
    // Re-runs happen only for attempts the operator recorded as lost (a pod declared lost while the
    // operator restarted): checkRequest holds them to that, per function; the figure is printed.
    // The faults mattered: every kind was injected, on each class it applies to.
    for (const kind of ["throttle", "error500", "error503", "delay", "reset", "lostAnswer", "cutWatch"] as const) {
      expect(proxy!.faults[kind], kind).toBeGreaterThan(0);
    }
    // Each class has its own seeded stream, so the plan fixes which request of a class is the first
    // faulted one: a run that made at least that many has seen it.
    for (const cls of ["write", "watch", "lease"] as const) {
      const first = firstFault(PLAN, cls);
      expect(first, `the plan faults some ${cls} request`).toBeGreaterThan(0);
      expect(proxy!.requests[cls], `${cls} requests (the plan faults request ${first})`).toBeGreaterThanOrEqual(first);
      const n = Object.entries(proxy!.faultsByClass).filter(([k]) => k.startsWith(`${cls}:`));
      expect(n.length, `faults on ${cls}`).toBeGreaterThan(0);
    }
  });
});
