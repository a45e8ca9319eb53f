// Durability on the cluster: a function pod deleted mid-call, and an operator killed mid-request.
// The request completes, and children that had finished are not executed again.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABEL } from "../../protocol/index.js";
import { createNamespace, deleteNamespace, kubectl, waitFor } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { deployApp, invoke, requestCalls, waitFinished } from "./support/trellis.js";

let op: OperatorProcess;
let ns = "";
const APP = "durability";

beforeAll(async () => {
  op = await startOperator("durability");
  ns = await createNamespace("durable");
  await deployApp(ns, APP, readFileSync(join(import.meta.dirname, "apps/durability.py"), "utf8"), "pipeline");
});
afterAll(async () => {
  await deleteNamespace(ns);
  await op?.stop();
});

/** Waits until the request's `slow` child runs: `quick` has finished and the root waits. */
async function whenSlowRuns(req: string) {
  return waitFor(`${req}: slow running`, async () => {
    const calls = await requestCalls(ns, req);
    const slow = calls.find((c) => c.fn === "slow");
    return slow?.status.phase === "Running" ? calls : undefined;
  });
}

describe("durability on the cluster", () => {
  it("a function pod deleted mid-call: the call re-runs on another pod and re-attaches to finished children", async () => {
    const req = await invoke(ns, APP, "pipeline", [1, 6]);
    const calls = await whenSlowRuns(req);
    const root = calls.find((c) => c.name === req)!;
    expect(root.status.phase).toBe("Running");
    const lostPod = root.status.pod!;
    await kubectl(["delete", "pod", lostPod, "-n", ns, "--grace-period=0", "--force"]);

    const status = await waitFinished(ns, req, 120_000);
    expect(status.error, JSON.stringify(status.error)).toBeUndefined();
    expect(status.phase).toBe("Succeeded");
    expect(status.pod).not.toBe(lostPod);
    // A deleted pod is a disruption: re-run without spending the infrastructure budget.
    expect(status.disruptions).toBe(1);
    expect(status.infrastructureFailures).toBeUndefined();
    expect(status.output?.value).toEqual({ value: 4, root_runs: 2, quick_runs: 1, slow_runs: 1 });
  });

  it("the operator killed mid-request: the request completes and nothing that had finished runs again", async () => {
    const req = await invoke(ns, APP, "pipeline", [2, 6]);
    await whenSlowRuns(req);
    await op.restart("SIGKILL");

    const status = await waitFinished(ns, req, 120_000);
    expect(status.error, JSON.stringify(status.error)).toBeUndefined();
    expect(status.phase).toBe("Succeeded");
    expect(status.output?.value).toEqual({ value: 6, root_runs: 1, quick_runs: 1, slow_runs: 1 });
    for (const c of await requestCalls(ns, req)) expect(c.status.attempts, c.name).toBe(1);
  });

  it("a tail chain survives the operator killed while it passes links: no link runs again, passed links settle", async () => {
    const n = 200;
    const req = await invoke(ns, APP, "hops", [n]);
    const settled = async () =>
      (await kubectl(["get", "fc", "-n", ns, "-l", `trellis.dev/request=${req},${LABEL.settled}`, "-o", "name"]))
        .split("\n")
        .filter(Boolean).length;
    await waitFor(`${req}: 30 links passed`, async () => ((await settled()) >= 30 ? true : undefined));
    await op.restart("SIGKILL");

    const status = await waitFinished(ns, req, 240_000);
    expect(status.error, JSON.stringify(status.error)).toBeUndefined();
    const out = status.output?.value as { value: number; runs: number[] };
    expect(out.value).toBe(n);
    const links = (await requestCalls(ns, req)).filter((c) => c.fn === "hop");
    expect(links.length).toBe(n);
    // Each link ran at least once and at most once per attempt (an attempt whose lease answer died
    // with the operator may not run at all): none ran again after it delegated.
    expect(out.runs.filter((r) => r < 1)).toEqual([]);
    const attempts = links.map((c) => c.status.attempts ?? 0);
    expect(out.runs.reduce((x, y) => x + y, 0)).toBeLessThanOrEqual(attempts.reduce((x, y) => x + y, 0));
    expect(out.runs.filter((r) => r > 1).length).toBeLessThanOrEqual(attempts.filter((a) => a > 1).length);
    // The root took the last link's output; the links it passed are settled (the operator killed
    // between moving the root and labelling a link settles that link after its restart). Link 1,
    // whose tail ended before the root could pass it, may have taken the output instead.
    expect(links.filter((c) => c.status.phase !== "Delegated" && c.status.phase !== "Succeeded")).toEqual([]);
    await waitFor(`${req}: passed links settled`, async () => ((await settled()) >= n - 2 ? true : undefined));
  }, 300_000);

  it("a map in shards survives the operator killed and an item pod force-deleted: every item ran at least once and at most once per attempt", async () => {
    const n = 300;
    const req = await invoke(ns, APP, "fan", [n]);
    const running = await waitFor(`${req}: items running`, async () => {
      const items = (await requestCalls(ns, req)).filter((c) => c.item);
      const done = items.filter((c) => c.status.phase === "Succeeded").length;
      return items.length === n && done >= 20 ? items.filter((c) => c.status.phase === "Running") : undefined;
    });
    await op.restart("SIGKILL");
    const lostPod = running[0]?.status.pod;
    expect(lostPod, "an item running when the operator was killed").toBeDefined();
    await kubectl(["delete", "pod", lostPod!, "-n", ns, "--grace-period=0", "--force"]);

    const status = await waitFinished(ns, req, 240_000);
    expect(status.error, JSON.stringify(status.error)).toBeUndefined();
    const out = status.output?.value as { value: number[]; runs: number[] };
    expect(out.value).toEqual(Array.from({ length: n }, (_, x) => x * 3));
    // Objects: the root, the map and one shard, not one per item.
    const objects = (await kubectl(["get", "fc", "-n", ns, "-l", `trellis.dev/request=${req}`, "-o", "name"]))
      .split("\n")
      .filter(Boolean);
    expect(objects.length).toBe(3);
    // Each item ran at least once and at most once per attempt: none lost, none re-run after it
    // finished. An attempt may run zero times: persisted Running, then its lease answer lost with
    // the killed operator (or its pod deleted before the worker began it), it is re-queued.
    const items = (await requestCalls(ns, req)).filter((c) => c.item);
    expect(items.length).toBe(n);
    const bySeq = new Map(items.map((c) => [c.seq, c.status.attempts ?? 0]));
    const wrong = out.runs
      .map((runs, x) => ({ x, runs, attempts: bySeq.get(x) ?? 0 }))
      .filter((r) => r.runs < 1 || r.runs > r.attempts);
    expect(wrong).toEqual([]);
    expect(items.every((c) => c.status.phase === "Succeeded")).toBe(true);
  }, 300_000);
});
