import { describe, expect, it } from "vitest";
import type { Action } from "./actions.js";
import type { Call } from "./calls.js";
import { decideCall } from "./decide-call.js";
import { decideAttemptFailure } from "./attempts.js";
import { resolvePolicy } from "./policy.js";
import { SHARD_ANNOTATION, childName } from "../../../protocol/index.js";
import { memoryView, mkCall, mkChild, type ViewOptions } from "./testing.js";

const NOW = Date.parse("2026-01-01T00:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();
const types = (a: Action[]) => a.map((x) => x.type);
const statusOf = (a: Action[]) => a.find((x) => x.type === "status") as Extract<Action, { type: "status" }> | undefined;

function decide(call: Call, others: Call[] = [], opts: ViewOptions = {}): Action[] {
  return decideCall(call, memoryView([call, ...others], opts), NOW);
}

describe("readiness", () => {
  const root = mkCall("r");
  const done = mkChild("a", "r", "r", 0, {}, { phase: "Succeeded", output: { value: 1 } });
  const running = mkChild("b", "r", "r", 1, {}, { phase: "Running", pod: "p", attempts: 1, startTime: iso(NOW) });
  const failed = mkChild(
    "c",
    "r",
    "r",
    2,
    {},
    {
      phase: "Failed",
      error: { type: "ValueError", message: "boom", traceback: "tb", reason: "function_error" },
    },
  );
  const cancelledIn = mkChild(
    "d",
    "r",
    "r",
    3,
    {},
    { phase: "Cancelled", error: { type: "Cancelled", message: "x", reason: "cancelled" } },
  );
  const cases: { name: string; args: Call["spec"]["args"]; kwargs?: Call["spec"]["kwargs"]; want: string[] }[] = [
    { name: "no inputs: queued at once", args: [{ value: 1 }], want: ["enqueue"] },
    { name: "all inputs Succeeded", args: [{ call: "a" }], kwargs: { k: { call: "a" } }, want: ["enqueue"] },
    { name: "an input still running", args: [{ call: "a" }, { call: "b" }], want: ["markWaiting"] },
    { name: "an input not created yet", args: [{ call: "zz" }], want: ["markWaiting"] },
    { name: "a keyword input running", args: [], kwargs: { k: { call: "b" } }, want: ["markWaiting"] },
    { name: "an input Failed", args: [{ call: "b" }, { call: "c" }], want: ["dequeue", "status"] },
    { name: "an input Cancelled", args: [{ call: "d" }], want: ["dequeue", "status"] },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const call = mkChild("x", "r", "r", 9, { args: tc.args, kwargs: tc.kwargs });
      expect(types(decide(call, [root, done, running, failed, cancelledIn]))).toEqual(tc.want);
    });
  }
  it("an input failure carries the input's error with reason input_failed and the input as cause", () => {
    const call = mkChild("x", "r", "r", 9, { args: [{ call: "c" }] });
    expect(statusOf(decide(call, [root, failed]))!.patch).toMatchObject({
      phase: "Failed",
      error: { type: "ValueError", message: "boom", traceback: "tb", reason: "input_failed", cause: "c" },
    });
  });
  it("a retry waits in the queue until retryAfter", () => {
    const call = mkCall("r", {}, { phase: "Queued", attempts: 1, retryAfter: iso(NOW + 4000) });
    expect(decide(call)).toEqual([{ type: "enqueue", notBefore: NOW + 4000 }]);
  });
  it("a passed retryAfter queues at once", () => {
    const call = mkCall("r", {}, { phase: "Queued", attempts: 1, retryAfter: iso(NOW - 1) });
    expect(decide(call)).toEqual([{ type: "enqueue" }]);
  });
});

describe("running attempts", () => {
  const app = {
    spec: {
      entrypoint: "f",
      functions: [
        {
          name: "f",
          timeoutSeconds: 10,
          retries: { maxRetries: 1, initialDelaySeconds: 2, maxDelaySeconds: 60, delayMultiplier: 2 },
        },
      ],
    },
  };
  const running = (startedAgoMs: number, extra: object = {}) =>
    mkCall("r", {}, { phase: "Running", pod: "p1", attempts: 1, startTime: iso(NOW - startedAgoMs), ...extra });

  it("alive pod within the deadline: requeue at the deadline (timeout + grace)", () => {
    expect(decide(running(1000), [], { app })).toEqual([{ type: "requeueAfter", ms: 10_000 + 10_000 - 1000 }]);
  });
  it("an untracked pod (operator restart) is tracked", () => {
    expect(types(decide(running(0), [], { app, pods: { p1: "untracked" } }))).toEqual(["track", "requeueAfter"]);
  });
  it("past timeout + grace: the attempt is cancelled and retried with backoff", () => {
    const a = decide(running(20_001), [], { app });
    expect(types(a)).toEqual(["cancelAttempt", "event", "status", "enqueue", "event"]);
    expect(statusOf(a)!.patch).toMatchObject({
      phase: "Queued",
      retryAfter: iso(NOW + 2000),
      error: { reason: "function_timeout", type: "TimeoutError" },
    });
  });
  it("past timeout just after a takeover: waits for the pod's own report until the grace ends", () => {
    expect(decide(running(20_001), [], { app, reportGraceUntil: NOW + 7_000 })).toEqual([
      { type: "requeueAfter", ms: 7_000 },
    ]);
    expect(types(decide(running(20_001), [], { app, reportGraceUntil: NOW }))[0]).toBe("cancelAttempt");
  });
  it("past timeout with retries spent: Failed with reason function_timeout", () => {
    const a = decide(running(20_001, { attempts: 2 }), [], { app });
    expect(statusOf(a)!.patch).toMatchObject({ phase: "Failed", error: { reason: "function_timeout" } });
  });
  for (const state of ["gone", "lost"] as const) {
    it(`pod ${state}: a disruption, re-queued without spending any retries`, () => {
      const a = decide(running(0, { infrastructureFailures: 2 }), [], { app, pods: { p1: state } });
      expect(types(a)).toEqual(["event", "status", "enqueue", "event"]);
      expect(statusOf(a)!.patch).toEqual({ phase: "Queued", disruptions: 1, retryAfter: null });
      expect(a.at(-1)).toMatchObject({ reason: "AttemptDisrupted" });
    });
  }
  it("disruptions do not count as user failures: a later user error still has its retries", () => {
    const c = mkCall("r", {}, { phase: "Queued", attempts: 5, disruptions: 4 });
    const a = decideAttemptFailure(
      c,
      resolvePolicy(c, app, undefined, 300),
      "user",
      { type: "E", message: "boom" },
      0,
      2,
    );
    expect(statusOf(a)!.patch).toMatchObject({ phase: "Queued", retryAfter: expect.any(String) });
  });
  it("pod lost beyond the disruption ceiling: Failed with reason infrastructure", () => {
    const a = decide(running(0, { disruptions: 100 }), [], { app, pods: { p1: "gone" } });
    expect(statusOf(a)!.patch).toMatchObject({
      phase: "Failed",
      error: {
        reason: "infrastructure",
        message: expect.stringContaining("attempts lost to disruptions: 101, limit 100"),
      },
    });
  });
});

describe("tail calls", () => {
  const root = mkCall("r");
  const delegated = (tail: string) =>
    mkChild("x", "r", "r", 0, {}, { phase: "Delegated", tailCall: tail, attempts: 1 });
  it("tail still running: nothing to do", () => {
    expect(decide(delegated("t"), [root, mkChild("t", "x", "r", 0, {}, { phase: "Running", pod: "p" })])).toEqual([]);
  });
  it("tail Succeeded: same output", () => {
    const t = mkChild("t", "x", "r", 0, {}, { phase: "Succeeded", output: { blob: "ns/r/b1" } });
    expect(statusOf(decide(delegated("t"), [root, t]))).toMatchObject({
      patch: { phase: "Succeeded" },
      output: { blob: "ns/r/b1" },
    });
  });
  it("tail Failed: same error, the tail as cause", () => {
    const t = mkChild(
      "t",
      "x",
      "r",
      0,
      {},
      { phase: "Failed", error: { type: "E", message: "m", reason: "function_error" } },
    );
    expect(statusOf(decide(delegated("t"), [root, t]))!.patch).toMatchObject({
      phase: "Failed",
      error: { type: "E", message: "m", cause: "t" },
    });
  });
  it("tail Cancelled: Cancelled", () => {
    const t = mkChild("t", "x", "r", 0, {}, { phase: "Cancelled" });
    expect(statusOf(decide(delegated("t"), [root, t]))!.patch).toMatchObject({ phase: "Cancelled" });
  });
  it("tail missing: Failed", () => {
    expect(statusOf(decide(delegated("nope"), [root]))!.patch).toMatchObject({ phase: "Failed" });
  });
});

describe("tail chains: the head follows the newest link, passed links settle", () => {
  // r (the request) → l1 → l2 → l3: each link delegated to a call it made.
  const link = (name: string, parent: string, status: Call["status"]) => mkChild(name, parent, "r", 0, {}, status);
  const delegatedTo = (tail: string): Call["status"] => ({ phase: "Delegated", tailCall: tail, attempts: 1 });
  const r = (tail: string) => mkCall("r", {}, delegatedTo(tail));
  const l3 = link("l3", "l2", { phase: "Running", pod: "p", attempts: 1 });

  it("a head whose tail delegated to a call it made waits on that call instead", () => {
    const l1 = link("l1", "r", delegatedTo("l2"));
    const l2 = link("l2", "l1", { phase: "Running", pod: "p", attempts: 1 });
    expect(decide(r("l1"), [l1, l2])).toEqual([{ type: "status", patch: { tailCall: "l2" } }]);
  });
  it("a link someone still delegates to keeps its tail (only the head moves)", () => {
    const l2 = link("l2", "l1", delegatedTo("l3"));
    expect(decide(link("l1", "r", delegatedTo("l2")), [r("l1"), l2, l3])).toEqual([]);
  });
  it("a tail that delegated to a call it did not make is waited on as it is (no cycle)", () => {
    const l1 = link("l1", "r", delegatedTo("x"));
    expect(decide(r("l1"), [l1, mkChild("x", "r", "r", 5, {}, { phase: "Running", pod: "p" })])).toEqual([]);
  });
  it("a passed link nothing reads is settled", () => {
    const l2 = link("l2", "l1", delegatedTo("l3"));
    // Its parent is settled already (gone), or Delegated, or finished.
    expect(decide(l2, [r("l3"), l3])).toEqual([{ type: "settle" }]);
    expect(decide(l2, [r("l3"), l3, link("l1", "r", delegatedTo("l3"))])).toEqual([{ type: "settle" }]);
    expect(decide(l2, [r("l3"), l3, link("l1", "r", { phase: "Succeeded" })])).toEqual([{ type: "settle" }]);
  });
  it("a Delegated call something may still read is not settled", () => {
    const l2 = link("l2", "l1", delegatedTo("l3"));
    // a delegator; a dependent; a parent whose attempt may wait on it or re-run and re-attach
    expect(decide(l2, [r("l2"), l3])).not.toContainEqual({ type: "settle" });
    const reader = mkChild("d", "r", "r", 7, { args: [{ call: "l2" }] }, { phase: "Blocked" });
    expect(decide(l2, [r("l3"), l3, reader])).toEqual([]);
    for (const phase of ["Running", "Queued", "Pending"] as const)
      expect(decide(l2, [r("l3"), l3, link("l1", "r", { phase })])).toEqual([]);
    // a request; a map item (its shard holds it)
    expect(decide(mkCall("q", {}, delegatedTo("l3")), [l3])).toEqual([]);
    const item = mkCall("i", { parent: "m", request: "r", sequence: 0 }, delegatedTo("l3"), {
      annotations: { [SHARD_ANNOTATION]: "shard-0" },
    });
    expect(decide(item, [r("l3"), mkCall("m", { parent: "r", request: "r" }, { phase: "Running" }), l3])).toEqual([]);
  });
  it("a link whose parent still runs does not move (it may be about to become its parent's tail) unless it is read", () => {
    const l2 = link("l2", "l1", delegatedTo("l3"));
    const l3 = link("l3", "l2", delegatedTo("l4"));
    const l4 = link("l4", "l3", { phase: "Running", pod: "p", attempts: 1 });
    const parent = link("l1", "r", { phase: "Running", pod: "p", attempts: 1 });
    const root = mkCall("r", {}, { phase: "Running", pod: "p", attempts: 1 });
    const moves = [{ type: "status", patch: { tailCall: "l4" } }];
    expect(decide(l2, [root, parent, l3, l4])).toEqual([]);
    // A pod waits on it, or an input reads it: it is a head, and moves.
    expect(decide(l2, [root, parent, l3, l4], { waited: ["l2"] })).toEqual(moves);
    const reader = mkChild("d", "l1", "r", 7, { args: [{ call: "l2" }] }, { phase: "Blocked" });
    expect(decide(l2, [root, parent, l3, l4, reader])).toEqual(moves);
    // A small map's item (its map never delegates to it) moves too.
    const map = mkCall("m", { parent: "r", request: "r", map: { items: [] } }, { phase: "Running" });
    expect(decide(link("i", "m", delegatedTo("l3")), [root, map, l3, l4])).toEqual(moves);
  });
  it("a finished tail is taken before anything else", () => {
    const l2 = link("l2", "l1", delegatedTo("l3"));
    const done = link("l3", "l2", { phase: "Succeeded", output: { value: 1 } });
    expect(statusOf(decide(l2, [r("l3"), done]))!.patch).toMatchObject({ phase: "Succeeded" });
  });
});

describe("cancellation and request failure", () => {
  const runningChild = mkChild("x", "r", "r", 0, {}, { phase: "Running", pod: "p", attempts: 3 });
  it("request deleted: running child cancelled and told to stop", () => {
    const a = decide(runningChild, []);
    expect(a.slice(0, 2)).toEqual([{ type: "dequeue" }, { type: "cancelAttempt", pod: "p", attempt: 3 }]);
    expect(statusOf(a)!.patch).toMatchObject({ phase: "Cancelled", error: { reason: "cancelled" } });
  });
  it("request being deleted: cancelled", () => {
    const root = mkCall("r", {}, { phase: "Running", pod: "p" }, { deletionTimestamp: iso(NOW) });
    expect(statusOf(decide(runningChild, [root]))!.patch).toMatchObject({ phase: "Cancelled" });
  });
  it("call being deleted: attempt cancelled, no status write", () => {
    const c = mkChild("x", "r", "r", 0, {}, { phase: "Running", pod: "p", attempts: 1 });
    c.metadata.deletionTimestamp = iso(NOW);
    expect(decide(c, [mkCall("r")])).toEqual([{ type: "dequeue" }, { type: "cancelAttempt", pod: "p", attempt: 1 }]);
  });
  it("request Failed: pending children cancelled", () => {
    const root = mkCall("r", {}, { phase: "Failed" });
    expect(statusOf(decide(mkChild("x", "r", "r", 0), [root]))!.patch).toMatchObject({ phase: "Cancelled" });
  });
  it("request Succeeded: children left to finish", () => {
    const root = mkCall("r", {}, { phase: "Succeeded" });
    expect(types(decide(mkChild("x", "r", "r", 0), [root]))).toEqual(["enqueue"]);
  });
  it("map failed: its remaining items are cancelled", () => {
    const root = mkCall("r", {}, { phase: "Running", pod: "p" });
    const m = mkChild("m", "r", "r", 0, { map: { items: [] } }, { phase: "Failed" });
    expect(statusOf(decide(mkChild("i", "m", "r", 1), [root, m]))!.patch).toMatchObject({ phase: "Cancelled" });
  });
  it("a RequestError anywhere fails the root with its message", () => {
    const root = mkCall("r", {}, { phase: "Running", pod: "p", attempts: 1 });
    const bad = mkChild(
      "x",
      "r",
      "r",
      0,
      {},
      { phase: "Failed", error: { type: "RequestError", message: "bad input", reason: "request_error" } },
    );
    const a = decide(root, [bad]);
    expect(a[1]).toEqual({ type: "cancelAttempt", pod: "p", attempt: 1 });
    expect(statusOf(a)!.patch).toMatchObject({
      phase: "Failed",
      error: { type: "RequestError", message: "bad input", reason: "request_error", cause: "x" },
    });
  });
});

describe("TTL after the request finished", () => {
  const done = (agoMs: number) => mkCall("r", {}, { phase: "Succeeded", completionTime: iso(NOW - agoMs) });
  it("no TTL: kept", () => expect(decide(done(1e9))).toEqual([]));
  it("before the TTL: requeue at it", () =>
    expect(decide(done(1000), [], { ttl: 60 })).toEqual([{ type: "requeueAfter", ms: 59_000 }]));
  it("after the TTL: delete the request", () =>
    expect(decide(done(60_000), [], { ttl: 60 })).toEqual([{ type: "deleteRequest" }]));
  it("children are not deleted one by one", () =>
    expect(
      decide(mkChild("x", "r", "r", 0, {}, { phase: "Succeeded", completionTime: iso(0) }), [], { ttl: 1 }),
    ).toEqual([]));
});

describe("names", () => {
  it("match the Python SDK's child ids", () => {
    expect(childName("r1", "r1", 0)).toBe("r1-d65n6jj274mfsczc");
    expect(childName("req-abc", "req-abc-xyz", 17)).toBe("req-abc-66d47skfsz3zzj6o");
    // The test vectors of runtime-image/PROTOCOL.md §7.
    const r = "r0123456789abcdef";
    expect(childName(r, r, 0)).toBe("r0123456789abcdef-564r2ejegai5vlsd");
    expect(childName(r, r, 1)).toBe("r0123456789abcdef-jipmbttnlnhowces");
    expect(childName(r, "r0123456789abcdef-564r2ejegai5vlsd", 0)).toBe("r0123456789abcdef-3sxgvgmsse7hi4tf");
  });
});
