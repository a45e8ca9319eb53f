// The engine alone at the sizes of the acceptance tests (2,000-item map of objects and in shards,
// 1,000-deep tail chain),
// on in-memory fakes with simulated sidecars. Not timed: it proves the work is linear enough to
// finish, and prints the rate the engine reaches without an API server.
import { afterEach, expect, it } from "vitest";
import { childName } from "../../../protocol/index.js";
import { type Harness, harness } from "./test-harness.js";

let h: Harness;
afterEach(async () => h?.close());

async function sidecar(pod: string, capacity: number, stop: () => boolean, onCall: (call: string) => Promise<void>) {
  while (!stop()) {
    const r = await h.req(pod, "POST", "/lease", { capacity, waitMs: 200 });
    const assignments = r.json().assignments as { call: string }[];
    await Promise.all(assignments.map((a) => onCall(a.call)));
  }
}

async function map2000(config: Parameters<typeof harness>[0]) {
  h = await harness({ waitingPhaseWriteAfterMs: 60_000, ...config });
  h.pods.set("pf", "f");
  for (let i = 0; i < 4; i++) h.pods.set(`pg${i}`, "g");
  await h.createRoot("r");
  const root = (await h.req("pf", "POST", "/lease", { capacity: 1, waitMs: 1000 })).json().assignments[0];
  const m = childName("r", "r", 0);
  const items = Array.from({ length: 2000 }, (_, i) => ({ value: i }));
  const t0 = performance.now();
  await h.req("pf", "POST", "/calls/r/children", {
    attempt: root.attempt,
    calls: [{ name: m, sequence: 0, function: "g", map: { items } }],
  });
  let done = false;
  const pods = [0, 1, 2, 3].map((i) =>
    sidecar(
      `pg${i}`,
      16,
      () => done,
      async (call) => {
        const v = h.call(call)!.spec.args![0]!.value as number;
        await h.req(`pg${i}`, "POST", `/calls/${call}/result`, { attempt: 1, output: { value: v * 2 } });
      },
    ),
  );
  const w = await h.req("pf", "POST", "/wait", { calls: [m], mode: "all", waitMs: 60_000 });
  done = true;
  const ms = performance.now() - t0;
  await Promise.all(pods);
  const out = w.json().outcomes[0].output.value as number[];
  expect(out.length).toBe(2000);
  expect(out[1999]).toBe(3998);
  return { ms, itemWrites: h.api.writes.filter((x) => x.name !== m && x.name !== "r").length };
}

it("a 2,000-item map of objects completes with three writes per item", async () => {
  const { ms, itemWrites } = await map2000({ shardMinItems: 1_000_000 });
  expect(itemWrites).toBe(3 * 2000);
  console.log(
    `engine on fakes: 2,000-item map of objects in ${ms.toFixed(0)} ms (${((2000 / ms) * 1000).toFixed(0)} calls/s)`,
  );
}, 60_000);

it("a 2,000-item map in shards completes with at most 0.05 writes per item", async () => {
  const { ms, itemWrites } = await map2000({ shardCommitMs: 10 });
  expect(itemWrites).toBeLessThanOrEqual(0.05 * 2000);
  console.log(
    `engine on fakes: 2,000-item map in shards in ${ms.toFixed(0)} ms (${((2000 / ms) * 1000).toFixed(0)} items/s, ${itemWrites} writes)`,
  );
}, 60_000);

it("a 1,000-deep tail chain completes with the root and the live link in memory, two writes at the end", async () => {
  h = await harness({ waitingPhaseWriteAfterMs: 60_000 });
  h.pods.set("pf", "f");
  await h.createRoot("t");
  let cur = (await h.req("pf", "POST", "/lease", { capacity: 1, waitMs: 1000 })).json().assignments[0];
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) {
    const next = childName("t", cur.call, 0);
    await h.req("pf", "POST", `/calls/${cur.call}/children`, {
      attempt: 1,
      calls: [{ name: next, sequence: 0, function: "f" }],
    });
    const leased = h.req("pf", "POST", "/lease", { capacity: 1, waitMs: 1000 });
    await h.req("pf", "POST", `/calls/${cur.call}/tail`, { attempt: 1, tailCall: next });
    cur = (await leased).json().assignments[0];
  }
  await h.until("the passed links settled", () => h.api.list().length === 2, 30_000);
  expect(h.engine.graph.size()).toBe(2);
  const writesBefore = h.api.writes.length;
  await h.req("pf", "POST", `/calls/${cur.call}/result`, { attempt: 1, output: { value: "end" } });
  await h.until("root done", () => h.call("t")?.status?.phase === "Succeeded", 30_000);
  expect(h.api.writes.length - writesBefore).toBe(2);
  // create, Running, Delegated, the root moving on, settled: five per link, none at the end.
  expect(writesBefore).toBeLessThanOrEqual(5 * 1000 + 3);
  console.log(`engine on fakes: 1,000-link tail chain in ${(performance.now() - t0).toFixed(0)} ms`);
}, 60_000);
