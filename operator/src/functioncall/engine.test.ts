import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type Assignment, LABEL, childName } from "../../../protocol/index.js";
import { useFakeClock } from "../dispatch/testing.js";
import { type Harness, harness } from "./test-harness.js";

let h: Harness;
afterEach(async () => {
  await h?.close();
  vi.useRealTimers();
});

const lease = (pod: string, capacity?: number, waitMs?: number) => h.lease(pod, capacity, waitMs);
const result = (pod: string, call: string, attempt: number, output: unknown) => h.result(pod, call, attempt, output);

describe("engine on fakes: the call path", () => {
  it("a waiting lease takes a new call at once; Running is persisted before the assignment; three writes per call", async () => {
    h = await harness();
    h.pods.set("p1", "f");
    const leased = lease("p1");
    await h.createRoot("r1", { args: [{ value: 2 }], kwargs: { k: { value: "x" } }, headers: { h: "v" } });
    const [a] = await leased;
    expect(a).toMatchObject({
      call: "r1",
      attempt: 1,
      function: "f",
      request: "r1",
      isRoot: true,
      args: [{ value: 2 }],
      kwargs: { k: { value: "x" } },
      headers: { h: "v" },
      timeoutSeconds: 300,
    });
    expect(h.api.get("ns/r1")!.status).toMatchObject({ phase: "Running", pod: "p1", attempts: 1 });
    expect((await result("p1", "r1", 1, { value: 42 })).status).toBe(200);
    expect(h.call("r1")!.status).toMatchObject({ phase: "Succeeded", output: { value: 42 } });
    expect(h.api.writesOf("r1")).toEqual(["create", "status:Running", "status:Succeeded"]);
    expect(h.engine.stats()).toMatchObject({
      calls: new Map([["ns/app/f", { Succeeded: 1 }]]),
      writes: 2,
      assignments: 1,
    });
  });

  it("a failed Running write puts the call back: the next lease gets it", async () => {
    h = await harness();
    h.pods.set("p1", "f");
    h.api.failNextStatus.add("r1");
    await h.createRoot("r1");
    await h.until("queued", () => h.engine.dispatcher.queuedAndRunning("ns", "app", "f").queued === 1);
    const [a] = await lease("p1");
    expect(a).toMatchObject({ call: "r1", attempt: 1 });
    expect(h.api.writesOf("r1")).toEqual(["create", "status:Running", "status:Running"]);
  });

  it("a lease whose pod hung up takes no call; the next lease does", async () => {
    h = await harness();
    h.pods.set("p1", "f");
    const hangUp = new AbortController();
    const id = { namespace: "ns", pod: "p1", application: "app", function: "f" };
    const first = h.engine.dispatcher.lease(id, 1, 5000, hangUp.signal);
    hangUp.abort();
    expect(await first).toEqual([]);
    await h.createRoot("r1");
    await h.until("queued", () => h.engine.dispatcher.queuedAndRunning("ns", "app", "f").queued === 1);
    expect(h.call("r1")!.status?.phase).toBeUndefined();
    expect((await lease("p1"))[0]).toMatchObject({ call: "r1" });
  });

  it("calls persisted for a lease that a newer lease superseded go to the newer lease", async () => {
    h = await harness();
    h.pods.set("p1", "f");
    let open!: () => void;
    h.api.statusGates.set("r1", new Promise<void>((r) => (open = r)));
    const id = { namespace: "ns", pod: "p1", application: "app", function: "f" };
    const first = h.engine.dispatcher.lease(id, 1, 5000);
    await h.createRoot("r1");
    await h.until("Running write in flight", () => h.api.writesOf("r1").includes("status:Running"));
    const second = h.engine.dispatcher.lease(id, 1, 5000);
    expect(await first).toEqual([]);
    open();
    expect((await second).map((a) => a.call)).toEqual(["r1"]);
  });

  it("a lease arriving when calls wait is answered with up to `capacity` calls, oldest first", async () => {
    h = await harness();
    h.pods.set("p1", "f");
    for (const n of ["a1", "a2", "a3"]) await h.createRoot(n);
    await h.until("queued", () => h.engine.dispatcher.queuedAndRunning("ns", "app", "f").queued === 3);
    const got = await lease("p1", 2);
    expect(got.map((a) => a.call)).toEqual(["a1", "a2"]);
    expect(h.engine.dispatcher.queuedAndRunning("ns", "app", "f")).toEqual({ queued: 1, running: 2 });
    expect(h.engine.dispatcher.podActivity("ns", "p1")).toMatchObject({ running: 2 });
    expect(h.engine.dispatcher.functionsWithBacklog("ns", "app")).toEqual(["f"]);
  });

  it("a call waiting longer than the threshold gets phase Queued written, once", async () => {
    h = await harness({ waitingPhaseWriteAfterMs: 20 });
    await h.createRoot("q1");
    await h.until("Queued", () => h.call("q1")?.status?.phase === "Queued");
    expect(h.api.writesOf("q1")).toEqual(["create", "status:Queued"]);
  });

  it("a call waiting on an input longer than the threshold gets Blocked written; then runs", async () => {
    h = await harness({ waitingPhaseWriteAfterMs: 20 });
    h.pods.set("pf", "f");
    h.pods.set("pg", "g");
    await h.createRoot("r");
    await lease("pf");
    const [a, b] = [childName("r", "r", 0), childName("r", "r", 1)];
    await h.req("pf", "POST", "/calls/r/children", {
      attempt: 1,
      calls: [
        { name: a, sequence: 0, function: "g" },
        { name: b, sequence: 1, function: "g", args: [{ call: a }] },
      ],
    });
    const [ga] = await lease("pg");
    await h.until("Blocked", () => h.call(b)?.status?.phase === "Blocked");
    const waiting = lease("pg");
    await h.until("lease parked", () => h.engine.dispatcher.leaseWaiting("ns", "pg"));
    await result("pg", ga!.call, 1, { value: 1 });
    const [gb] = await waiting;
    expect(gb).toMatchObject({ call: b, args: [{ value: 1 }] });
    expect(h.api.writesOf(b)).toEqual(["create", "status:Blocked", "status:Running"]);
  });

  it("children, wait and inputs by reference: a dependent runs when its input Succeeded", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    h.pods.set("pg", "g");
    await h.createRoot("r");
    const [root] = await lease("pf");
    const c0 = childName("r", "r", 0);
    const c1 = childName("r", "r", 1);
    const made = await h.req("pf", "POST", "/calls/r/children", {
      attempt: root!.attempt,
      calls: [
        { name: c0, sequence: 0, function: "g", args: [{ value: 1 }] },
        { name: c1, sequence: 1, function: "g", args: [{ call: c0 }] },
      ],
    });
    expect(made.status).toBe(200);
    expect(made.json()).toEqual({ finished: [] });
    expect(h.api.get(`ns/${c1}`)!.metadata).toMatchObject({
      labels: {
        "trellis.dev/request": "r",
        "trellis.dev/parent": "r",
        "trellis.dev/function": "g",
        "trellis.dev/application": "app",
      },
      ownerReferences: [{ kind: "FunctionCall", name: "r" }],
    });
    const waiting = h.req("pf", "POST", "/wait", { calls: [c1], mode: "all", waitMs: 3000 });
    const [g0] = await lease("pg");
    expect(g0!.call).toBe(c0);
    await result("pg", c0, 1, { value: 10 });
    const [g1] = await lease("pg");
    expect(g1).toMatchObject({ call: c1, args: [{ value: 10 }], isRoot: false });
    await result("pg", c1, 1, { value: 11 });
    const w = await waiting;
    expect(w.json()).toEqual({ outcomes: [{ call: c1, phase: "Succeeded", output: { value: 11 } }] });
    // Re-creating finished children (a retried parent) returns their outcomes instead of re-running them.
    const again = await h.req("pf", "POST", "/calls/r/children", {
      attempt: 1,
      calls: [{ name: c0, sequence: 0, function: "g", args: [{ value: 1 }] }],
    });
    expect(again.json()).toEqual({ finished: [{ call: c0, phase: "Succeeded", output: { value: 10 } }] });
  });

  it("a map runs one call per item and assembles the outputs in order", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    h.pods.set("pg", "g");
    await h.createRoot("r");
    await lease("pf");
    const m = childName("r", "r", 0);
    await h.req("pf", "POST", "/calls/r/children", {
      attempt: 1,
      calls: [{ name: m, sequence: 0, function: "g", map: { items: [{ value: 1 }, { value: 2 }, { value: 3 }] } }],
    });
    const got = await h.until(
      "3 items queued",
      () => h.engine.dispatcher.queuedAndRunning("ns", "app", "g").queued === 3,
    );
    expect(got).toBe(true);
    const items = await lease("pg", 10);
    expect(items.map((a) => a.call)).toEqual([0, 1, 2].map((i) => childName("r", m, i)));
    for (const a of [...items].reverse()) await result("pg", a.call, 1, { value: (a.args[0]!.value as number) * 10 });
    const w = await h.req("pf", "POST", "/wait", { calls: [m], mode: "all", waitMs: 3000 });
    expect(w.json().outcomes).toEqual([{ call: m, phase: "Succeeded", output: { value: [10, 20, 30] } }]);
    expect(h.api.writesOf(m)).toEqual(["create", "status:Succeeded"]);
  });

  it("a map over the output of another call (itemsFrom), read back from the blob store", async () => {
    h = await harness({ inlineValueLimitBytes: 32 });
    h.pods.set("pf", "f");
    h.pods.set("pg", "g");
    await h.createRoot("r");
    await lease("pf");
    const [src, m] = [childName("r", "r", 0), childName("r", "r", 1)];
    await h.req("pf", "POST", "/calls/r/children", {
      attempt: 1,
      calls: [
        { name: src, sequence: 0, function: "g" },
        { name: m, sequence: 1, function: "g", map: { itemsFrom: src } },
      ],
    });
    const [s] = await lease("pg");
    await result("pg", s!.call, 1, { value: ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"] });
    expect(h.call(src)!.status!.output!.blob).toBeDefined();
    await h.until("3 items queued", () => h.engine.dispatcher.queuedAndRunning("ns", "app", "g").queued === 3);
    const items = await lease("pg", 3);
    for (const a of items) await result("pg", a.call, 1, { value: (a.args[0]!.value as string).slice(0, 1) });
    const w = await h.req("pf", "POST", "/wait", { calls: [m], mode: "all", waitMs: 3000 });
    expect(w.json().outcomes[0]).toMatchObject({ phase: "Succeeded", output: { value: ["a", "b", "c"] } });
  });

  it("a chain of tail calls: the root follows the newest link, passed links are settled, one write at the end", async () => {
    const settled: string[] = [];
    h = await harness({}, undefined, { hooks: { settled: (_ns, _app, fn) => settled.push(fn) } });
    let cur = await h.runRoot("t");
    const links = [cur.call];
    for (let i = 0; i < 30; i++) {
      const next = childName("t", cur.call, 0);
      await h.req("pf", "POST", `/calls/${cur.call}/children`, {
        attempt: cur.attempt,
        calls: [{ name: next, sequence: 0, function: "f" }],
      });
      const leased = lease("pf");
      expect(
        (await h.req("pf", "POST", `/calls/${cur.call}/tail`, { attempt: cur.attempt, tailCall: next })).status,
      ).toBe(200);
      cur = (await leased)[0]!;
      links.push(cur.call);
    }
    const last = cur.call;
    await h.until("every passed link settled", () => links.slice(1, -1).every((l) => !h.call(l)));
    expect(h.call("t")!.status).toMatchObject({ phase: "Delegated", tailCall: last });
    const before = h.api.writes.length;
    await result("pf", last, 1, { value: "end" });
    await h.until("root done", () => h.call("t")?.status?.phase === "Succeeded");
    expect(h.call("t")!.status?.output).toEqual({ value: "end" });
    // The last link's result and the root's: nothing unwinds through the passed links.
    expect(h.api.writes.slice(before).map((w) => w.name)).toEqual([last, "t"]);
    // A passed link stays in the API server, Delegated to its own tail and labelled settled.
    const mid = h.api.get(`ns/${links[5]!}`)!;
    expect(mid.status).toMatchObject({ phase: "Delegated", tailCall: links[6] });
    expect(mid.metadata.labels?.[LABEL.settled]).toBe("true");
    expect(h.api.writesOf(links[5]!)).toEqual(["create", "status:Running", "status:Delegated", "patchMeta"]);
    expect(h.api.list().map((c) => c.metadata.name)).toEqual(["t", last]);
    // Each passed link counted once (the metric of settled links), the head and the last not.
    expect(settled).toEqual(links.slice(1, -1).map(() => "f"));
  });
});

describe("engine on fakes: failures", () => {
  it("a user error is retried with backoff, then succeeds on attempt 2", async () => {
    const clock = useFakeClock();
    h = await harness(
      {},
      {
        functions: [
          { name: "f", retries: { maxRetries: 1, initialDelaySeconds: 0.05, maxDelaySeconds: 1, delayMultiplier: 2 } },
        ],
      },
      { clock },
    );
    h.pods.set("p", "f");
    await h.createRoot("r");
    await lease("p");
    const failedAt = clock.now();
    await h.req("p", "POST", "/calls/r/failure", {
      attempt: 1,
      kind: "user",
      error: { type: "ValueError", message: "no", traceback: "tb" },
    });
    expect(h.call("r")!.status).toMatchObject({
      phase: "Queued",
      attempts: 1,
      error: { type: "ValueError" },
      retryAfter: new Date(failedAt + 50).toISOString(),
    });
    // A lease waiting from the failure on gets attempt 2 when the 50 ms backoff has passed on the
    // fake clock, not before.
    let a2: Assignment | undefined;
    const leased = lease("p").then(([a]) => (a2 = a));
    await clock.advance(49);
    expect(a2).toBeUndefined();
    await clock.advance(1);
    expect(a2).toMatchObject({ call: "r", attempt: 2 });
    await leased;
    expect((await result("p", "r", 1, { value: 1 })).status).toBe(409);
    await result("p", "r", 2, { value: 1 });
    expect(h.call("r")!.status).toMatchObject({ phase: "Succeeded" });
    expect(h.call("r")!.status!.error).toBeUndefined();
    expect(h.events.events.map((e) => e.reason)).toEqual(["CallRetried"]);
  });

  it("a function without retries of its own takes the application's (decorator table from register)", async () => {
    h = await harness();
    h.pods.set("pg", "g");
    const retries = { maxRetries: 2, initialDelaySeconds: 0, maxDelaySeconds: 0, delayMultiplier: 1 };
    await h.req("pg", "POST", "/register", {
      function: "g",
      capacity: 1,
      sidecarVersion: "1",
      functions: [
        { name: "f", async: false, application: true, retries },
        { name: "g", async: false, timeoutSeconds: 7 },
      ],
    });
    await h.createRoot("r", { function: "g" });
    const [a] = await lease("pg");
    expect(a!.timeoutSeconds).toBe(7);
    await h.req("pg", "POST", "/calls/r/failure", { attempt: 1, kind: "user", error: { type: "E", message: "m" } });
    expect(h.call("r")!.status!.phase).toBe("Queued");
  });

  it("retries spent: Failed with type, message and traceback; awaiting callers get the failure", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    await h.createRoot("r");
    await lease("pf");
    const c = childName("r", "r", 0);
    await h.req("pf", "POST", "/calls/r/children", { attempt: 1, calls: [{ name: c, sequence: 0, function: "f" }] });
    const w = h.req("pf", "POST", "/wait", { calls: [c], mode: "any", waitMs: 3000 });
    await lease("pf");
    await h.req("pf", "POST", `/calls/${c}/failure`, {
      attempt: 1,
      kind: "user",
      error: { type: "KeyError", message: "k", traceback: "T" },
    });
    expect((await w).json().outcomes[0]).toEqual({
      call: c,
      phase: "Failed",
      error: { type: "KeyError", message: "k", traceback: "T", reason: "function_error" },
    });
    expect(h.events.events.map((e) => e.reason)).toEqual(["CallFailed"]);
  });

  it("a RequestError in a child fails the request with its message and cancels what still runs", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    await h.createRoot("r");
    await lease("pf");
    const [c0, c1] = [childName("r", "r", 0), childName("r", "r", 1)];
    await h.req("pf", "POST", "/calls/r/children", {
      attempt: 1,
      calls: [
        { name: c0, sequence: 0, function: "f" },
        { name: c1, sequence: 1, function: "f" },
      ],
    });
    await lease("pf", 2);
    await h.req("pf", "POST", `/calls/${c0}/failure`, {
      attempt: 1,
      kind: "request_error",
      error: { type: "RequestError", message: "bad input" },
    });
    await h.until("root failed", () => h.call("r")?.status?.phase === "Failed");
    expect(h.call("r")!.status!.error).toMatchObject({
      type: "RequestError",
      message: "bad input",
      reason: "request_error",
      cause: c0,
    });
    await h.until("c1 cancelled", () => h.call(c1)?.status?.phase === "Cancelled");
    const hb = await h.req("pf", "POST", "/heartbeat", {
      calls: [
        { call: "r", attempt: 1 },
        { call: c1, attempt: 1 },
      ],
    });
    expect(hb.json().cancel.sort()).toEqual(["r", c1].sort());
  });

  it("a deleted pod's call is re-run elsewhere without spending retries", async () => {
    h = await harness();
    h.pods.set("p1", "f");
    h.pods.set("p2", "f");
    await h.createRoot("r");
    await lease("p1");
    const other = lease("p2");
    h.engine.podGone("ns", "p1");
    const [a] = await other;
    expect(a).toMatchObject({ call: "r", attempt: 2 });
    expect(h.call("r")!.status).toMatchObject({ phase: "Running", pod: "p2", disruptions: 1 });
    expect(h.call("r")!.status!.infrastructureFailures).toBeUndefined();
    expect(h.events.events.map((e) => e.reason)).toEqual(["PodLost", "AttemptDisrupted"]);
  });

  it("a result that arrives after the operator gave the attempt up as lost is kept (no re-run)", async () => {
    h = await harness({ heartbeatTimeoutMs: 50 });
    h.pods.set("p1", "f");
    await h.createRoot("r");
    await lease("p1", 1, 10);
    await h.until("re-queued", () => h.call("r")?.status?.phase === "Queued");
    expect((await result("p1", "r", 1, { value: "late" })).status).toBe(200);
    expect(h.call("r")!.status).toMatchObject({ phase: "Succeeded", output: { value: "late" }, attempts: 1 });
    expect(h.engine.dispatcher.queuedAndRunning("ns", "app", "f").queued).toBe(0);
  });

  it("a pod that stops heartbeating loses its calls", async () => {
    h = await harness({ heartbeatTimeoutMs: 50 });
    h.pods.set("p1", "f");
    await h.createRoot("r");
    await lease("p1", 1, 10);
    await h.until("re-queued", () => h.call("r")?.status?.phase === "Queued" && h.call("r")!.status!.disruptions === 1);
  });

  it("the operator times out an attempt the pod never reports (timeout + grace)", async () => {
    h = await harness({ timeoutGraceMs: 0, takeoverGraceMs: 0 });
    h.pods.set("p1", "f");
    await h.createRoot("r", { timeoutSeconds: 1 });
    await lease("p1");
    await h.until("timed out", () => h.call("r")?.status?.phase === "Failed" && h.call("r"), 3000);
    expect(h.call("r")!.status!.error).toMatchObject({ type: "TimeoutError", reason: "function_timeout" });
    const hb = await h.req("p1", "POST", "/heartbeat", { calls: [{ call: "r", attempt: 1 }] });
    expect(hb.json().cancel).toEqual(["r"]);
  });

  it("a request deleted by a user takes its blobs; its running calls are told to stop", async () => {
    h = await harness({ inlineValueLimitBytes: 16 });
    h.pods.set("p1", "f");
    await h.createRoot("r");
    await lease("p1");
    const c = childName("r", "r", 0);
    await h.req("p1", "POST", "/calls/r/children", { attempt: 1, calls: [{ name: c, sequence: 0, function: "f" }] });
    await lease("p1");
    await h.req("p1", "PUT", "/requests/r/state/k", { value: { value: "a value longer than sixteen bytes" } });
    expect(existsSync(join(h.blobDir, "blobs", "ns", "r"))).toBe(true);
    await h.api.delete({ namespace: "ns", name: "r" });
    await h.until("blobs removed", () => !existsSync(join(h.blobDir, "blobs", "ns", "r")));
    await h.until("child cancelled", () => h.call(c)?.status?.phase === "Cancelled");
    const hb = await h.req("p1", "POST", "/heartbeat", {
      calls: [
        { call: "r", attempt: 1 },
        { call: c, attempt: 1 },
      ],
    });
    expect(hb.json().cancel.sort()).toEqual(["r", c].sort());
  });

  it("TTL after the request finished deletes the root and its blobs", async () => {
    h = await harness({ inlineValueLimitBytes: 16 }, { requests: { ttlSecondsAfterFinished: 0 } });
    h.pods.set("p1", "f");
    await h.createRoot("r");
    await lease("p1");
    await result("p1", "r", 1, { value: "a value longer than sixteen bytes" });
    await h.until("deleted", () => !h.api.get("ns/r"));
    expect(h.api.writesOf("r")).toEqual(["create", "status:Running", "status:Succeeded", "delete"]);
    await h.until("blobs removed", () => !existsSync(join(h.blobDir, "blobs", "ns", "r")));
  });
});

describe("engine on fakes: operator restart", () => {
  it("a Running call whose pod was deleted before the operator heard of it is re-run", async () => {
    h = await harness();
    h.pods.set("p1", "f");
    await h.createRoot("r");
    await h.api.patchStatus(
      { namespace: "ns", name: "r" },
      { phase: "Running", pod: "gone-pod", attempts: 1, startTime: new Date().toISOString() },
    );
    await h.until("seen Running", () => h.call("r")?.status?.phase === "Running");
    h.engine.podGone("ns", "gone-pod");
    const leased = h.req("p1", "POST", "/lease", { capacity: 1, waitMs: 3000 });
    await h.until("re-queued", () => h.call("r")?.status?.disruptions === 1);
    expect((await leased).json().assignments[0]).toMatchObject({ call: "r", attempt: 2 });
  });

  it("a Running call adopted after a restart keeps running when its pod heartbeats it", async () => {
    h = await harness({ heartbeatTimeoutMs: 100 });
    h.pods.set("p1", "f");
    await h.createRoot("r");
    await h.api.patchStatus(
      { namespace: "ns", name: "r" },
      { phase: "Running", pod: "p1", attempts: 3, startTime: new Date().toISOString() },
    );
    await h.until("seen Running", () => h.call("r")?.status?.phase === "Running");
    for (let i = 0; i < 4; i++) {
      const hb = await h.req("p1", "POST", "/heartbeat", { calls: [{ call: "r", attempt: 3 }] });
      expect(hb.json().cancel).toEqual([]);
      await new Promise((res) => setTimeout(res, 40));
    }
    expect(h.call("r")!.status).toMatchObject({ phase: "Running", attempts: 3 });
    expect(h.engine.dispatcher.podActivity("ns", "p1")).toMatchObject({ registered: true, running: 1 });
    expect((await h.req("p1", "POST", "/calls/r/result", { attempt: 3, output: { value: 1 } })).status).toBe(200);
  });
});
