import { describe, expect, it } from "vitest";
import {
  API_VERSION,
  type FunctionCallStatus,
  SHARD_MAX_ITEMS,
  type ShardCall,
  expandShards,
  functionCall,
  itemEntry,
  itemName,
  itemStatus,
  planShards,
  shardItem,
  shardSummary,
  shortError,
} from "./index.js";

const epoch = Date.parse("2026-12-01T00:00:00.000Z");

describe("shard item entries", () => {
  it("round-trip an item's status, the pod by index and times as offsets", () => {
    const s: FunctionCallStatus = {
      phase: "Running",
      attempts: 2,
      disruptions: 1,
      infrastructureFailures: 1,
      pod: "pod-b",
      queuedTime: "2026-12-01T00:00:01.250Z",
      startTime: "2026-12-01T00:00:02.000Z",
      retryAfter: "2026-11-30T23:59:59.000Z",
      output: { value: [1, 2] },
      tailCall: "r-abc",
      error: { type: "E", message: "m" },
    };
    const pods = ["pod-a"];
    const e = itemEntry(s, pods, epoch);
    expect(pods).toEqual(["pod-a", "pod-b"]);
    expect(e).toMatchObject({ p: "R", a: 2, d: 1, i: 1, w: 1, q: 1250, s: 2000, r: -1000 });
    expect(itemStatus(e, pods, epoch)).toEqual(s);
  });

  it("a Pending item has an empty entry; progress is not kept", () => {
    expect(itemEntry({ phase: "Pending", progress: { current: 1, total: 2 } }, [], epoch)).toEqual({});
    expect(itemStatus({}, [], epoch)).toEqual({});
    expect(itemStatus(undefined, [], epoch)).toEqual({});
  });

  it("a long error keeps its type, the head of its message and the tail of its traceback", () => {
    const e = shortError({ type: "ValueError", message: "m".repeat(4000), traceback: "x".repeat(9000) + "LAST LINE" });
    expect(JSON.stringify(e).length).toBeLessThanOrEqual(1024);
    expect(e.type).toBe("ValueError");
    expect(e.message).toMatch(/^m+ \[shortened from 4000 characters\]$/);
    expect(e.traceback).toMatch(/LAST LINE$/);
    const small = { type: "E", message: "short" };
    expect(shortError(small)).toBe(small);
  });
});

describe("planShards", () => {
  it("cuts by count, in order, covering every item once", () => {
    const items = Array.from({ length: 1234 }, (_, i) => ({ value: i }));
    const plan = planShards(items);
    expect(plan.map((p) => p.count)).toEqual([SHARD_MAX_ITEMS, SHARD_MAX_ITEMS, 234]);
    expect(plan.map((p) => p.offset)).toEqual([0, SHARD_MAX_ITEMS, 2 * SHARD_MAX_ITEMS]);
  });

  it("cuts by bytes so that large items make smaller shards", () => {
    const items = Array.from({ length: 10 }, () => ({ value: "x".repeat(1000) }));
    const plan = planShards(items, 500, 3500);
    expect(plan.map((p) => p.count)).toEqual([3, 3, 3, 1]);
    expect(planShards([])).toEqual([]);
  });
});

describe("shard summary and items", () => {
  it("counts items by phase; a shard ends when all its items did", () => {
    expect(shardSummary(3, [{ p: "S" }, { p: "R" }])).toEqual({
      phase: "Running",
      itemCounts: { total: 3, succeeded: 1, failed: 0, running: 1 },
    });
    expect(shardSummary(2, [])).toMatchObject({ phase: "Pending" });
    expect(shardSummary(2, [{ p: "S" }, { p: "S" }]).phase).toBe("Succeeded");
    expect(shardSummary(2, [{ p: "S" }, { p: "C" }])).toMatchObject({ phase: "Cancelled", itemCounts: { failed: 1 } });
    expect(shardSummary(2, [{ p: "F" }, { p: "C" }]).phase).toBe("Failed");
  });

  const shard: ShardCall = {
    apiVersion: API_VERSION,
    kind: "FunctionCall",
    metadata: { name: "r-shard0", namespace: "ns", uid: "u1", resourceVersion: "7", labels: { a: "b" } },
    spec: {
      application: "app",
      function: "g",
      parent: "r-map",
      request: "r",
      sequence: 0,
      shard: { offset: 500, items: [{ value: 1 }, { call: "r-in" }] },
    },
    status: { epoch, pods: ["p0"], items: [{ p: "S", a: 1, w: 0, s: 5, c: 9, o: { value: 2 } }] },
  };

  it("an item reads as a call of its own: its name, map, sequence, argument and state", () => {
    const it0 = shardItem(shard, 0);
    expect(it0.metadata).toMatchObject({
      name: itemName("r", "r-map", 500),
      namespace: "ns",
      resourceVersion: "7",
      annotations: { "trellis.dev/shard": "r-shard0" },
    });
    expect(it0.spec).toEqual({
      application: "app",
      function: "g",
      parent: "r-map",
      request: "r",
      sequence: 500,
      args: [{ value: 1 }],
    });
    expect(it0.status).toMatchObject({ phase: "Succeeded", pod: "p0", output: { value: 2 } });
    expect(shardItem(shard, 1).status).toBeUndefined();
    expect(expandShards([shard]).map((c) => c.spec.sequence)).toEqual([500, 501]);
  });

  it("the schema takes a shard and refuses an unknown phase letter", () => {
    expect(functionCall.safeParse(shard).success).toBe(true);
    const bad = functionCall.safeParse({
      ...shard,
      status: { ...shard.status, items: [{ p: "X" }] },
    });
    expect(bad.success).toBe(false);
  });
});
