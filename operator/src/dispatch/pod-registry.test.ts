import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Assignment } from "../../../protocol/index.js";
import { PodRegistry } from "./pod-registry.js";
import type { PodIdentity } from "./pods.js";
import { type FakeClock, useFakeClock } from "./testing.js";

const HB_TIMEOUT = 30_000;
const HB_INTERVAL = 5_000;
const id = (pod = "p1", fn = "f"): PodIdentity => ({ namespace: "ns", pod, application: "app", function: fn });

let clock: FakeClock;
let lost: string[][];
let unreachable: string[];
let activity: string[];
/** The persisted running attempts: "name" → pod and attempt. */
let persisted: Map<string, { pod: string; attempt: number }>;
let reg: PodRegistry;

beforeEach(() => {
  clock = useFakeClock();
  lost = [];
  unreachable = [];
  activity = [];
  persisted = new Map();
  reg = new PodRegistry({
    clock,
    config: { heartbeatTimeoutMs: HB_TIMEOUT, heartbeatIntervalMs: HB_INTERVAL },
    runningAttempt: (_ns, name) => persisted.get(name),
    onLost: (keys) => lost.push(keys),
    onUnreachable: (pod) => unreachable.push(pod.id.pod),
    onPodActivity: (_ns, pod) => activity.push(pod),
  });
});
afterEach(() => {
  reg.stop();
  vi.useRealTimers();
});

/** The pod registered and runs `name` (attempt 1), as persisted. */
function runs(name: string, pod = "p1") {
  reg.register(id(pod), []);
  persisted.set(name, { pod, attempt: 1 });
  reg.assigned("ns", pod, name, 1);
}

describe("PodRegistry: heartbeat watchdog", () => {
  it("a pod silent for heartbeatTimeoutMs is lost: its lease ends, its calls are reconciled", async () => {
    runs("c1");
    await clock.advance(HB_TIMEOUT - 1);
    expect(lost).toEqual([]);
    expect(reg.attemptState("ns", "p1", "c1", 1)).toBe("alive");
    await clock.advance(1);
    expect(lost).toEqual([["ns/c1"]]);
    expect(unreachable).toEqual(["p1"]);
    expect(reg.attemptState("ns", "p1", "c1", 1)).toBe("lost");
  });

  it("any contact refreshes the watchdog; a lost pod that speaks again is alive", async () => {
    runs("c1");
    await clock.advance(20_000);
    expect(reg.heartbeat(id(), [{ call: "c1", attempt: 1 }], false)).toEqual([]);
    await clock.advance(20_000);
    expect(lost).toEqual([]);
    await clock.advance(HB_TIMEOUT);
    expect(lost).toEqual([["ns/c1"]]);
    reg.heartbeat(id(), [{ call: "c1", attempt: 1 }], false);
    expect(reg.attemptState("ns", "p1", "c1", 1)).toBe("alive");
  });

  it("a call assigned to the pod but missing from its heartbeats for two intervals is lost", async () => {
    runs("c1");
    await clock.advance(2 * HB_INTERVAL);
    reg.heartbeat(id(), [], false);
    expect(lost).toEqual([]);
    await clock.advance(1);
    reg.heartbeat(id(), [], false);
    expect(lost).toEqual([["ns/c1"]]);
    expect(reg.attemptState("ns", "p1", "c1", 1)).toBe("lost");
    reg.heartbeat(id(), [], false);
    expect(lost).toHaveLength(1); // reported once
  });
});

const assignment = (call: string, attempt = 1): Assignment => ({
  call,
  attempt,
  function: "f",
  request: call,
  args: [],
  kwargs: {},
  headers: {},
  timeoutSeconds: 300,
  isRoot: true,
});
/** A lease answer of p1 handing it these (persisted) calls; its seq. */
const deliver = (...names: string[]): number =>
  reg.stamp(
    reg.get("ns", "p1")!,
    names.map((n) => assignment(n)),
  ).seq;
const lease = (seq: number, epoch = reg.epoch) => ({ epoch, seq });

describe("PodRegistry: heartbeats that name the last lease answer", () => {
  it("a heartbeat built before the answer that delivered a call does not lose it, however late", async () => {
    runs("c1");
    expect(deliver("c1")).toBe(1);
    await clock.advance(5 * HB_INTERVAL); // the heartbeat was built long before it arrived
    reg.heartbeat(id(), [], false, lease(0));
    expect(lost).toEqual([]);
    expect(reg.attemptState("ns", "p1", "c1", 1)).toBe("alive");
    reg.heartbeat(id(), [], false, lease(1));
    expect(lost).toEqual([["ns/c1"]]);
  });

  it("one built after that answer loses a missing call at once", () => {
    runs("c1");
    runs("c2");
    deliver("c1");
    expect(deliver("c2")).toBe(2);
    reg.heartbeat(id(), [{ call: "c1", attempt: 1 }], false, lease(2));
    expect(lost).toEqual([["ns/c2"]]);
    expect(reg.attemptState("ns", "p1", "c1", 1)).toBe("alive");
  });

  it("an empty answer repeats the last seq: an answer lost on the way shows in the next heartbeat", () => {
    runs("c1");
    deliver("c1");
    expect(reg.stamp(reg.get("ns", "p1")!, [])).toEqual({ assignments: [], epoch: reg.epoch, seq: 1 });
    reg.heartbeat(id(), [], false, lease(1));
    expect(lost).toEqual([["ns/c1"]]);
  });

  it("a heartbeat naming another operator's answer, or none yet, loses none of this one's deliveries", async () => {
    runs("c1");
    deliver("c1");
    await clock.advance(5 * HB_INTERVAL);
    reg.heartbeat(id(), [], false, lease(99, "earlier-operator"));
    reg.heartbeat(id(), [], false, null); // the sidecar's first answer is still on its way
    expect(lost).toEqual([]);
  });

  it("assignments not delivered yet (a superseded lease's) are never lost by a heartbeat", async () => {
    runs("c0");
    runs("c1"); // persisted, waiting in `undelivered` for the pod's next lease
    deliver("c0");
    await clock.advance(5 * HB_INTERVAL);
    reg.heartbeat(id(), [{ call: "c0", attempt: 1 }], false, lease(1));
    expect(lost).toEqual([]);
    expect(deliver("c1")).toBe(2);
    reg.heartbeat(id(), [{ call: "c0", attempt: 1 }], false, lease(1));
    expect(lost).toEqual([]);
    reg.heartbeat(id(), [{ call: "c0", attempt: 1 }], false, lease(2));
    expect(lost).toEqual([["ns/c1"]]);
  });

  it("calls an earlier operator delivered (tracked, adopted) keep the time rule", async () => {
    reg.register(id(), []);
    reg.track({ namespace: "ns", name: "c1", application: "app", function: "f" }, "p1", 2);
    persisted.set("c2", { pod: "p1", attempt: 1 });
    reg.heartbeat(id(), [{ call: "c2", attempt: 1 }], false, lease(7, "earlier-operator"));
    reg.heartbeat(id(), [], false, lease(0));
    expect(lost).toEqual([]);
    await clock.advance(2 * HB_INTERVAL + 1);
    reg.heartbeat(id(), [], false, null);
    expect(lost.flat().sort()).toEqual(["ns/c1", "ns/c2"]);
  });

  it("a heartbeat without `lease` (an older sidecar) keeps the time rule, undelivered calls too", async () => {
    runs("c1");
    runs("c2");
    deliver("c1");
    reg.heartbeat(id(), [], false);
    expect(lost).toEqual([]);
    await clock.advance(2 * HB_INTERVAL + 1);
    reg.heartbeat(id(), [], false);
    expect(lost.flat().sort()).toEqual(["ns/c1", "ns/c2"]);
  });

  it("stamps only the running entry of the delivered attempt", () => {
    runs("c1");
    const seq = reg.stamp(reg.get("ns", "p1")!, [assignment("c1", 2)]).seq; // a stale attempt
    reg.heartbeat(id(), [], false, lease(seq));
    expect(lost).toEqual([]);
  });
});

describe("PodRegistry: pods deleted", () => {
  it("podGone: the running calls are lost, the pod is gone, its lease ends", () => {
    runs("c1");
    reg.podGone("ns", "p1");
    expect(lost).toEqual([["ns/c1"]]);
    expect(unreachable).toEqual(["p1"]);
    expect(reg.attemptState("ns", "p1", "c1", 1)).toBe("gone");
    reg.release("ns", "p1", "c1");
    expect(reg.get("ns", "p1")).toBeUndefined();
    expect(reg.attemptState("ns", "p1", "c1", 1)).toBe("gone"); // remembered
  });

  it("a Running call found after a restart that names a deleted pod is not tracked", () => {
    reg.podGone("ns", "old");
    reg.track({ namespace: "ns", name: "c1", application: "app", function: "f" }, "old", 1);
    expect(reg.attemptState("ns", "old", "c1", 1)).toBe("gone");
    reg.track({ namespace: "ns", name: "c2", application: "app", function: "f" }, "p9", 3);
    expect(reg.attemptState("ns", "p9", "c2", 3)).toBe("alive");
    expect(reg.running("ns", "app", "f")).toBe(1);
  });
});

describe("PodRegistry: heartbeat answers", () => {
  it("a cancellation is delivered in the next heartbeat that lists the call, once", () => {
    runs("c1");
    reg.cancel("ns", "p1", "c1");
    expect(reg.heartbeat(id(), [{ call: "c1", attempt: 1 }], false)).toEqual(["c1"]);
    expect(reg.heartbeat(id(), [{ call: "c1", attempt: 1 }], false)).toEqual([]);
  });

  it("calls that are not the pod's running attempt are to be aborted", () => {
    runs("c1");
    persisted.set("c2", { pod: "p2", attempt: 1 });
    persisted.set("c3", { pod: "p1", attempt: 2 });
    const cancel = reg.heartbeat(
      id(),
      [
        { call: "c1", attempt: 1 },
        { call: "c2", attempt: 1 },
        { call: "c3", attempt: 1 },
        { call: "gone", attempt: 1 },
      ],
      false,
    );
    expect(cancel.sort()).toEqual(["c2", "c3", "gone"]);
  });

  it("a current attempt the registry did not know (operator restart) is adopted", () => {
    reg.register(id(), []);
    persisted.set("c1", { pod: "p1", attempt: 4 });
    expect(reg.heartbeat(id(), [{ call: "c1", attempt: 4 }], false)).toEqual([]);
    expect(reg.runningOn("ns", "p1")).toEqual(["c1"]);
    expect(reg.activity("ns", "p1")).toMatchObject({ registered: true, running: 1 });
  });
});

describe("PodRegistry: counts", () => {
  it("running per function and per pod; lastBusyAt when a pod goes idle", async () => {
    runs("c1");
    runs("c2", "p2");
    expect(reg.running("ns", "app", "f")).toBe(2);
    expect(reg.functionsRunning("ns", "app")).toEqual(["f"]);
    await clock.advance(1000);
    reg.release("ns", "p1", "c1");
    expect(reg.running("ns", "app", "f")).toBe(1);
    expect(reg.activity("ns", "p1")).toEqual({ registered: true, running: 0, lastBusyAt: clock.now(), functions: [] });
    expect(activity).toContain("p1");
  });

  it("the function table a pod reported is the application's", () => {
    reg.register(id(), [{ name: "f", timeoutSeconds: 9 }]);
    expect(reg.discovered("ns", "app", "f")).toEqual({ name: "f", timeoutSeconds: 9 });
    expect(reg.discoveredTable("ns", "other")).toBeUndefined();
  });
});
