import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FileBlobStore } from "../blobs/index.js";
import { Dispatcher } from "../dispatch/index.js";
import type { WorkQueue } from "../kube/index.js";
import { type ApplyDeps, Applier } from "./apply.js";
import { FakeCalls, FakeEvents } from "./fakes.js";
import { CallGraph } from "./graph.js";
import { ProgressThrottle } from "./progress.js";
import { CallStore } from "./store.js";
import { mkCall } from "./testing.js";
import { Waiters } from "./waiters.js";
import { WaitingMarker } from "./waiting-marker.js";

const dir = mkdtempSync(join(tmpdir(), "trellis-apply-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function parts() {
  const api = new FakeCalls();
  const graph = new CallGraph();
  const store = new CallStore(api, graph);
  const added: string[] = [];
  const queue = { add: (k: string) => added.push(k), addAfter: () => undefined } as unknown as WorkQueue;
  const clock = { now: () => 0 };
  const dispatcher = new Dispatcher({
    clock,
    config: { heartbeatTimeoutMs: 1000, heartbeatIntervalMs: 100 },
    start: async () => undefined,
    runningAttempt: () => undefined,
    onLost: () => undefined,
  });
  const events = new FakeEvents();
  const deps: ApplyDeps = {
    graph,
    store,
    dispatcher,
    marker: new WaitingMarker(60_000, clock, async () => undefined),
    queue,
    events,
    blobs: new FileBlobStore(dir),
    waiters: new Waiters(() => undefined),
    progress: new ProgressThrottle(
      1000,
      () => 0,
      async () => undefined,
    ),
    itemsCache: new Map(),
    config: { inlineValueLimitBytes: 64 },
    clock,
  };
  return { api, graph, store, added, events, dispatcher, applier: new Applier(deps), stop: () => dispatcher.stop() };
}

describe("Applier", () => {
  it("effects are performed at once, in order", () => {
    const p = parts();
    p.applier.effects(mkCall("c"), [{ type: "reconcile", names: ["a", "b"] }, { type: "enqueue" }]);
    expect(p.added).toEqual(["ns/a", "ns/b"]);
    expect(p.dispatcher.isQueued({ namespace: "ns", name: "c", application: "app", function: "f" })).toBe(true);
    p.stop();
  });

  it("writes are awaited in order; the call as written is what later actions see", async () => {
    const p = parts();
    const c = await p.api.create(mkCall("c"));
    const r = await p.applier.apply(c, [
      { type: "status", patch: { phase: "Queued" } },
      { type: "event", eventType: "Normal", reason: "R", message: "m" },
      { type: "requeueAfter", ms: 50 },
      { type: "requeueAfter", ms: 20 },
    ]);
    expect(r.call?.status?.phase).toBe("Queued");
    expect(r.requeueAfterMs).toBe(20);
    expect(p.events.events.map((e) => e.reason)).toEqual(["R"]);
    p.stop();
  });

  it("a status write that finds the call gone ends the list", async () => {
    const p = parts();
    const r = await p.applier.apply(mkCall("gone"), [
      { type: "status", patch: { phase: "Queued" } },
      { type: "event", eventType: "Normal", reason: "R", message: "m" },
    ]);
    expect(r.call).toBeUndefined();
    expect(p.events.events).toEqual([]);
    p.stop();
  });

  it("an output over the inline limit is stored as a blob first", async () => {
    const p = parts();
    const c = await p.api.create(mkCall("c"));
    const r = await p.applier.apply(c, [
      { type: "status", patch: { phase: "Succeeded" }, output: { value: "x".repeat(100) } },
    ]);
    expect(r.call?.status?.output?.blob).toMatch(/^ns\/c\//);
    p.stop();
  });

  it("creates report the calls that existed already", async () => {
    const p = parts();
    const a = await p.api.create(mkCall("a"));
    p.graph.observe(a); // the watch event of the first create
    const r = await p.applier.apply(a, [{ type: "create", calls: [mkCall("a"), mkCall("b")] }]);
    expect(r.existing.map((c) => c.metadata.name)).toEqual(["a"]);
    expect(p.graph.get("ns", "b")).toBeDefined();
    p.stop();
  });

  it("a large expansion creates behind status writes; a small one goes at once", async () => {
    const p = parts();
    const parent = await p.api.create(mkCall("parent"));
    let inFlight = 0;
    let most = 0;
    let items = 0;
    const create = p.api.create.bind(p.api);
    p.api.create = async (c) => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      if (c.metadata.name!.startsWith("item-")) items++;
      return create(c);
    };
    // A status write in flight the whole time.
    let endStatus!: () => void;
    const status = p.store.lanes.status(() => new Promise<void>((r) => (endStatus = r)));
    const many = p.applier.apply(parent, [
      { type: "create", calls: Array.from({ length: 12 }, (_v, i) => mkCall(`item-${i}`)) },
    ]);
    await p.applier.apply(parent, [{ type: "create", calls: [mkCall("sync-child")] }]);
    expect(p.api.get("ns/sync-child")).toBeDefined();
    expect(items).toBeLessThan(12); // made before the expansion was through
    await many;
    expect(most).toBeLessThanOrEqual(3); // two bulk creates beside the status write, plus the small one
    endStatus();
    await status;
    p.stop();
  });
});
