// A large map's items in shard FunctionCalls: each item keeps the semantics of a call (retries,
// re-run on pod loss, failure propagation, order, tail calls, children) while its states are
// group-committed into its shard's status. The whole engine on fakes, driven as sidecars drive it.
import { afterEach, describe, expect, it } from "vitest";
import { childName, isShard, itemName, SHARD_MAX_ITEMS } from "../../../protocol/index.js";
import { type Harness, harness } from "./test-harness.js";
import type { Call } from "./calls.js";

let h: Harness;
afterEach(async () => h?.close());

const M = childName("r", "r", 0);
const lease = (pod: string, capacity?: number, waitMs?: number) => h.lease(pod, capacity, waitMs);
const result = (pod: string, call: string, attempt: number, output: unknown) => h.result(pod, call, attempt, output);
const shards = (): Call[] => h.api.list().filter((c) => isShard(c));
const item = (i: number) => itemName("r", M, i);

/** Root r running on pod pf, which maps g over `items` (pods pg0.. run g). */
async function startMap(items: unknown[], config: Parameters<typeof harness>[0] = {}, app = {}) {
  h = await harness({ shardMinItems: 4, shardCommitMs: 0, ...config }, app);
  h.pods.set("pf", "f");
  for (let i = 0; i < 3; i++) h.pods.set(`pg${i}`, "g");
  await h.createRoot("r");
  const [root] = await lease("pf");
  await h.req("pf", "POST", "/calls/r/children", {
    attempt: root!.attempt,
    calls: [{ name: M, sequence: 0, function: "g", map: { items: items.map((value) => ({ value })) } }],
  });
  await h.until("items visible", () => h.engine.graph.childStats("ns", M).count === items.length);
}

const waitMap = async () => (await h.req("pf", "POST", "/wait", { calls: [M], mode: "all", waitMs: 10_000 })).json();

describe("map shards", () => {
  it("items live in shards (no object each), run as calls, and the output keeps input order", async () => {
    const n = SHARD_MAX_ITEMS + 10;
    await startMap(Array.from({ length: n }, (_, i) => i));
    expect(shards().map((s) => s.spec.shard!.items.length)).toEqual([SHARD_MAX_ITEMS, 10]);
    expect(h.api.list().length).toBe(1 + 1 + 2); // root, map, two shards
    // Every item is a call the graph knows by its name, a child of the map.
    expect(h.call(item(7))).toMatchObject({ spec: { parent: M, sequence: 7, args: [{ value: 7 }] } });
    const done = new Set<string>();
    while (done.size < n) {
      const got = await lease("pg0", 64);
      // Durable before the pod hears of it: the shard's status already says Running on pg0.
      for (const a of got) expect(h.call(a.call)!.status).toMatchObject({ phase: "Running", pod: "pg0", attempts: 1 });
      await Promise.all(got.map((a) => result("pg0", a.call, a.attempt, { value: (a.args[0]!.value as number) * 10 })));
      got.forEach((a) => done.add(a.call));
    }
    const w = await waitMap();
    expect(w.outcomes[0].output.value).toEqual(Array.from({ length: n }, (_, i) => i * 10));
    const s = shards()[0]!;
    expect(s.status).toMatchObject({
      phase: "Succeeded",
      itemCounts: { total: SHARD_MAX_ITEMS, succeeded: SHARD_MAX_ITEMS, failed: 0, running: 0 },
      pods: ["pg0"],
    });
    expect(s.status!.items![3]).toMatchObject({ p: "S", a: 1, w: 0, o: { value: 30 } });
    // Writes: the shards' creates and far fewer status writes than item transitions (2 per item).
    const shardWrites = h.api.writes.filter((w) => shards().some((s) => s.metadata.name === w.name)).length;
    expect(shardWrites).toBeLessThan(n / 10);
    expect(h.api.writes.some((w) => w.name === item(0))).toBe(false);
    // Metrics count items, not objects (read from the entries, none decoded).
    expect(h.engine.graph.countByPhase().get("ns\0app\0g\0Succeeded")).toBe(n + 1);
  });

  it("an item is retried with backoff, its attempts counted in its entry", async () => {
    await startMap(
      [1, 2, 3, 4],
      {},
      {
        functions: [{ name: "g", retries: { maxRetries: 1, initialDelaySeconds: 0, maxDelaySeconds: 0 } }],
      },
    );
    const first = await lease("pg0", 4);
    expect(first.length).toBe(4);
    const bad = first[2]!;
    await h.req("pg0", "POST", `/calls/${bad.call}/failure`, {
      attempt: 1,
      kind: "user",
      error: { type: "ValueError", message: "once", traceback: "tb" },
    });
    for (const a of [first[0]!, first[1]!, first[3]!]) await result("pg0", a.call, 1, { value: 0 });
    const [again] = await lease("pg1");
    expect(again).toMatchObject({ call: bad.call, attempt: 2 });
    expect(h.call(bad.call)!.status).toMatchObject({ phase: "Running", attempts: 2, pod: "pg1" });
    await result("pg1", bad.call, 2, { value: 9 });
    expect((await waitMap()).outcomes[0].output.value).toEqual([0, 0, 9, 0]);
    expect(h.events.events.find((e) => e.reason === "CallRetried")).toMatchObject({
      name: shards()[0]!.metadata.name,
    });
  });

  it("an item that fails for good fails the map with it as cause and cancels the others", async () => {
    await startMap([1, 2, 3, 4, 5]);
    const got = await lease("pg0", 2);
    await h.req("pg0", "POST", `/calls/${got[0]!.call}/failure`, {
      attempt: 1,
      kind: "user",
      error: { type: "KeyError", message: "x".repeat(5000), traceback: "t".repeat(60_000) },
    });
    const w = await waitMap();
    expect(w.outcomes[0]).toMatchObject({ phase: "Failed", error: { cause: got[0]!.call } });
    await h.until("others cancelled", () =>
      [1, 2, 3, 4].every((i) => h.call(item(i))?.status?.phase === "Cancelled") ? true : undefined,
    );
    // The running one is told to abort; a long error is kept short in the shard.
    const hb = await h.req("pg0", "POST", "/heartbeat", { calls: [{ call: got[1]!.call, attempt: 1 }] });
    expect(hb.json().cancel).toEqual([got[1]!.call]);
    const e = h.call(got[0]!.call)!.status!.error!;
    expect(e.type).toBe("KeyError");
    expect(JSON.stringify(e).length).toBeLessThanOrEqual(1024);
    expect(shards()[0]!.status).toMatchObject({ phase: "Failed", itemCounts: { failed: 5 } });
  });

  it("an item whose pod is lost runs again elsewhere without spending retries", async () => {
    await startMap([1, 2, 3, 4]);
    const got = await lease("pg0", 4);
    const other = lease("pg1", 4);
    h.engine.podGone("ns", "pg0");
    const again = await other;
    expect(again.map((a) => a.attempt)).toEqual([2, 2, 2, 2]);
    expect(new Set(again.map((a) => a.call))).toEqual(new Set(got.map((a) => a.call)));
    expect(h.call(got[0]!.call)!.status).toMatchObject({ phase: "Running", pod: "pg1", disruptions: 1 });
    for (const a of again) await result("pg1", a.call, 2, { value: 1 });
    expect((await waitMap()).outcomes[0].output.value).toEqual([1, 1, 1, 1]);
  });

  it("a large output goes to the blob store and the map's list keeps it in place", async () => {
    await startMap([1, 2, 3, 4]);
    const got = await lease("pg0", 4);
    for (const a of got) await result("pg0", a.call, 1, { value: a.args[0]!.value === 2 ? "y".repeat(1000) : 1 });
    expect(h.call(item(1))!.status!.output!.blob).toBeDefined();
    const w = await waitMap();
    expect(w.outcomes[0].output.list.length).toBe(4);
  });

  it("an item may tail-call and make children like any call", async () => {
    await startMap([1, 2, 3, 4]);
    const got = await lease("pg0", 4);
    const a = got[0]!;
    const child = childName("r", a.call, 0);
    await h.req("pg0", "POST", `/calls/${a.call}/children`, {
      attempt: 1,
      calls: [{ name: child, sequence: 0, function: "g", args: [{ value: 5 }] }],
    });
    expect(h.api.get(`ns/${child}`)!.spec.parent).toBe(a.call);
    await h.req("pg0", "POST", `/calls/${a.call}/tail`, { attempt: 1, tailCall: child });
    expect(h.call(a.call)!.status).toMatchObject({ phase: "Delegated", tailCall: child });
    for (const b of got.slice(1)) await result("pg0", b.call, 1, { value: 0 });
    const [c] = await lease("pg1");
    expect(c!.call).toBe(child);
    await result("pg1", child, 1, { value: 55 });
    expect((await waitMap()).outcomes[0].output.value).toEqual([55, 0, 0, 0]);
  });

  it("a new operator takes over running items from the shards (no re-run of finished ones)", async () => {
    await startMap([1, 2, 3, 4]);
    const got = await lease("pg0", 4);
    await result("pg0", got[0]!.call, 1, { value: 1 });
    const api = h.api;
    await h.close();
    h = await harness({ shardMinItems: 4, shardCommitMs: 0 }, {}, { calls: api, writer: api });
    h.pods.set("pf", "f");
    h.pods.set("pg0", "g");
    // The running ones are the pod's still: it reports them to the new operator.
    for (const a of got.slice(1)) expect((await result("pg0", a.call, 1, { value: 2 })).status).toBe(200);
    expect((await waitMap()).outcomes[0].output.value).toEqual([1, 2, 2, 2]);
    expect(h.call(got[0]!.call)!.status!.attempts).toBe(1);
  });

  it("a map below the threshold keeps one object per item", async () => {
    await startMap([1, 2, 3], { shardMinItems: 4 });
    expect(shards()).toEqual([]);
    expect(h.api.get(`ns/${item(0)}`)).toBeDefined();
  });
});
