import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Assignment } from "../../../protocol/index.js";
import { Dispatcher } from "./dispatcher.js";
import type { CallRef, PodIdentity, StartResult } from "./pods.js";
import { type FakeClock, useFakeClock } from "./testing.js";

const pod = (name = "p1"): PodIdentity => ({ namespace: "ns", pod: name, application: "app", function: "f" });
const call = (name: string): CallRef => ({ namespace: "ns", name, application: "app", function: "f" });
const assignment = (name: string, attempt = 1): Assignment => ({
  call: name,
  attempt,
  function: "f",
  request: name,
  args: [],
  kwargs: {},
  headers: {},
  timeoutSeconds: 300,
  isRoot: true,
});

let clock: FakeClock;
let d: Dispatcher;
let lost: string[][];
/** What `start` answers per call name (default: assign attempt 1); calls are recorded. */
let starts: { pod: string; name: string; readyAt: number }[];
let answer: (name: string) => Promise<StartResult> | StartResult;

beforeEach(() => {
  clock = useFakeClock();
  lost = [];
  starts = [];
  answer = (name) => ({ assignment: assignment(name) });
  d = new Dispatcher({
    clock,
    config: { heartbeatTimeoutMs: 30_000, heartbeatIntervalMs: 5_000 },
    start: async (p, name, readyAt) => {
      starts.push({ pod: p.pod, name, readyAt });
      const r = await answer(name);
      if (r && "assignment" in r) d.pods.assigned(p.namespace, p.pod, name, r.assignment.attempt);
      return r;
    },
    runningAttempt: () => undefined,
    onLost: (keys) => lost.push(keys),
  });
});
afterEach(() => {
  d.stop();
  vi.useRealTimers();
});

/** A lease whose answer the test can look at before it resolves. */
function lease(p = pod(), capacity = 1, waitMs = 10_000, signal?: AbortSignal) {
  const out: { got?: Assignment[] } = {};
  void d.lease(p, capacity, waitMs, signal).then((a) => (out.got = a));
  return out;
}
const names = (a: Assignment[] | undefined) => a?.map((x) => x.call);

describe("Dispatcher: matching", () => {
  it("a parked lease takes a call the moment it is enqueued", async () => {
    const l = lease();
    await clock.settle();
    expect(l.got).toBeUndefined();
    d.enqueue(call("a"));
    await clock.settle();
    expect(names(l.got)).toEqual(["a"]);
    expect(starts).toEqual([{ pod: "p1", name: "a", readyAt: clock.now() }]);
    expect(d.queuedAndRunning("ns", "app", "f")).toEqual({ queued: 0, running: 1 });
    expect(d.assignments).toBe(1);
  });

  it("a lease arriving while calls wait takes up to its capacity, oldest first", async () => {
    for (const n of ["a", "b", "c"]) {
      d.enqueue(call(n));
      await clock.advance(10);
    }
    expect(d.queuedAndRunning("ns", "app", "f").queued).toBe(3);
    const l = lease(pod(), 2);
    await clock.settle();
    expect(names(l.got)).toEqual(["a", "b"]);
    expect(d.queuedAndRunning("ns", "app", "f")).toEqual({ queued: 1, running: 2 });
    expect(d.functionsWithBacklog("ns", "app")).toEqual(["f"]);
    expect(d.podActivity("ns", "p1")).toMatchObject({ registered: true, running: 2 });
  });

  it("capacity 0 answers at once with nothing; a lease with no work ends at its deadline", async () => {
    d.enqueue(call("a"));
    expect(await d.lease(pod(), 0, 10_000)).toEqual([]);
    d.dequeue(call("a"));
    const l = lease(pod(), 1, 2_000);
    await clock.advance(1_999);
    expect(l.got).toBeUndefined();
    await clock.advance(1);
    expect(l.got).toEqual([]);
  });

  it("dequeue and isQueued; an enqueue while the call's Running write is in flight is ignored", async () => {
    d.enqueue(call("a"));
    expect(d.isQueued(call("a"))).toBe(true);
    d.dequeue(call("a"));
    expect(d.isQueued(call("a"))).toBe(false);
    let open!: (r: StartResult) => void;
    answer = () => new Promise((r) => (open = r));
    d.enqueue(call("b"));
    const l = lease();
    await clock.settle();
    d.enqueue(call("b"));
    expect(d.isQueued(call("b"))).toBe(false);
    open({ assignment: assignment("b") });
    await clock.settle();
    expect(names(l.got)).toEqual(["b"]);
  });
});

describe("Dispatcher: what start answers", () => {
  it("not dispatchable: the lease keeps waiting for the next call", async () => {
    answer = (name) => (name === "gone" ? undefined : { assignment: assignment(name) });
    const l = lease();
    d.enqueue(call("gone"));
    await clock.settle();
    expect(l.got).toBeUndefined();
    d.enqueue(call("b"));
    await clock.settle();
    expect(names(l.got)).toEqual(["b"]);
  });

  it("a failed Running write hands the call to onLost; the lease keeps waiting", async () => {
    answer = () => Promise.reject(new Error("etcd hiccup"));
    const l = lease();
    d.enqueue(call("a"));
    await clock.settle();
    expect(lost).toEqual([["ns/a"]]);
    expect(l.got).toBeUndefined();
  });

  it("retryAfter: a call enqueued with notBefore wakes the parked lease exactly then", async () => {
    const l = lease(pod(), 1, 20_000);
    d.enqueue(call("a"), clock.now() + 5_000);
    await clock.advance(4_999);
    expect(l.got).toBeUndefined();
    expect(starts).toEqual([]);
    await clock.advance(1);
    expect(names(l.got)).toEqual(["a"]);
  });

  it("a notBefore found when starting puts the call back until then, with its first readyAt", async () => {
    const t0 = clock.now();
    let first = true;
    answer = (name) => {
      if (!first) return { assignment: assignment(name) };
      first = false;
      return { notBefore: t0 + 3_000 };
    };
    const l = lease(pod(), 1, 20_000);
    d.enqueue(call("a"));
    await clock.settle();
    expect(l.got).toBeUndefined();
    expect(d.isQueued(call("a"))).toBe(true);
    await clock.advance(3_000);
    expect(names(l.got)).toEqual(["a"]);
    expect(starts.map((s) => s.readyAt)).toEqual([t0, t0]);
  });
});

describe("Dispatcher: leases superseded or abandoned", () => {
  it("assignments written for a lease superseded meanwhile go to the newer lease", async () => {
    let open!: (r: StartResult) => void;
    answer = () => new Promise((r) => (open = r));
    const first = lease();
    d.enqueue(call("a"));
    await clock.settle();
    const second = lease();
    await clock.settle();
    expect(first.got).toEqual([]);
    open({ assignment: assignment("a") });
    await clock.settle();
    expect(names(second.got)).toEqual(["a"]);
  });

  it("when no newer lease is parked, the pod's next lease gets them at once", async () => {
    let open!: (r: StartResult) => void;
    answer = () => new Promise((r) => (open = r));
    const hangUp = new AbortController();
    const first = lease(pod(), 1, 10_000, hangUp.signal);
    d.enqueue(call("a"));
    await clock.settle();
    hangUp.abort();
    await clock.settle();
    expect(first.got).toEqual([]);
    open({ assignment: assignment("a") });
    await clock.settle();
    expect(names(await d.lease(pod(), 1, 10_000))).toEqual(["a"]);
  });

  it("a lease whose pod hung up takes no call; the call waits for the next lease", async () => {
    const hangUp = new AbortController();
    const l = lease(pod(), 1, 10_000, hangUp.signal);
    await clock.settle();
    expect(d.leaseWaiting("ns", "p1")).toBe(true);
    hangUp.abort();
    await clock.settle();
    expect(l.got).toEqual([]);
    expect(d.leaseWaiting("ns", "p1")).toBe(false);
    d.enqueue(call("a"));
    await clock.settle();
    expect(starts).toEqual([]);
    expect(names(await d.lease(pod(), 1, 10_000))).toEqual(["a"]);
  });

  it("a pod that is lost ends its parked lease", async () => {
    const l = lease(pod(), 1, 60_000);
    await clock.advance(30_000);
    expect(l.got).toEqual([]);
  });
});

describe("Dispatcher: lease answers are stamped for heartbeats", () => {
  const answerOf = (p = pod(), capacity = 1, signal?: AbortSignal) => {
    const out: { got?: Awaited<ReturnType<Dispatcher["leaseAnswer"]>> } = {};
    void d.leaseAnswer(p, capacity, 10_000, signal).then((a) => (out.got = a));
    return out;
  };

  it("answers with assignments get the pod's next seq, empty ones repeat it; the epoch is the operator's", async () => {
    expect(await d.leaseAnswer(pod(), 0, 0)).toEqual({ assignments: [], epoch: d.pods.epoch, seq: 0 });
    const l = answerOf();
    d.enqueue(call("a"));
    await clock.settle();
    expect(l.got).toMatchObject({ epoch: d.pods.epoch, seq: 1 });
    expect(names(l.got?.assignments)).toEqual(["a"]);
    expect(d.pods.get("ns", "p1")!.running.get("a")).toMatchObject({ seq: 1, tracked: false });
    expect(await d.leaseAnswer(pod(), 0, 0)).toMatchObject({ seq: 1 });
    expect(await d.leaseAnswer(pod("p2"), 0, 0)).toMatchObject({ seq: 0 }); // per pod
    const other = new Dispatcher({
      clock,
      config: { heartbeatTimeoutMs: 30_000, heartbeatIntervalMs: 5_000 },
      start: async () => undefined,
      runningAttempt: () => undefined,
      onLost: () => undefined,
    });
    expect(other.pods.epoch).toMatch(/^[0-9a-f]{16}$/);
    expect(other.pods.epoch).not.toBe(d.pods.epoch); // another operator process
    other.stop();
  });

  it("a superseded lease's assignments get their seq when delivered; until then no heartbeat loses them", async () => {
    let open!: (r: StartResult) => void;
    answer = () => new Promise((r) => (open = r));
    const hangUp = new AbortController();
    const first = answerOf(pod(), 1, hangUp.signal);
    d.enqueue(call("a"));
    await clock.settle();
    hangUp.abort();
    await clock.settle();
    expect(first.got).toEqual({ assignments: [], epoch: d.pods.epoch, seq: 0 });
    open({ assignment: assignment("a") });
    await clock.settle();
    await clock.advance(20_000); // undelivered, long past the time rule
    d.pods.heartbeat(pod(), [], false, { epoch: d.pods.epoch, seq: 0 });
    expect(lost).toEqual([]);
    const next = await d.leaseAnswer(pod(), 1, 10_000);
    expect(next).toMatchObject({ seq: 1 });
    d.pods.heartbeat(pod(), [], false, { epoch: d.pods.epoch, seq: 0 }); // built before it arrived
    expect(lost).toEqual([]);
    d.pods.heartbeat(pod(), [], false, { epoch: d.pods.epoch, seq: 1 });
    expect(lost).toEqual([["ns/a"]]);
  });
});
