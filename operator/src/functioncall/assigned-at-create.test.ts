// The engine on fakes: children created already assigned to a parked lease (their create carries
// the assignment, protocol/src/assigned-at-create.ts), through the runtime API as sidecars use it.
import { afterEach, describe, expect, it } from "vitest";
import { API_VERSION, ASSIGNED_ANNOTATION, type Assignment, childName } from "../../../protocol/index.js";
import { KubeApiError } from "../kube/index.js";
import { type Harness, harness } from "./test-harness.js";

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const lease = (pod: string, capacity?: number, waitMs?: number) => h.lease(pod, capacity, waitMs);
const result = (pod: string, call: string, attempt: number, output: unknown) => h.result(pod, call, attempt, output);

/** Root r of f runs on pod pf; a lease of g's pod pg is parked. */
async function rootAndParkedLease(config: Parameters<typeof harness>[0] = {}, capacity = 1) {
  h = await harness(config);
  h.pods.set("pf", "f");
  h.pods.set("pg", "g");
  await h.createRoot("r");
  const [root] = await lease("pf");
  const parked = lease("pg", capacity);
  await h.until("the lease parked", () => h.engine.dispatcher.leaseWaiting("ns", "pg"));
  return { root: root!, parked };
}

/** `parent` (running on pf) makes `child` of f while pf's lease is parked: the lease takes it. */
async function childTakenByParkedLease(parent: Assignment, child: string): Promise<Assignment> {
  const parked = lease("pf");
  await h.until("the lease parked", () => h.engine.dispatcher.leaseWaiting("ns", "pf"));
  await h.req("pf", "POST", `/calls/${parent.call}/children`, {
    attempt: parent.attempt,
    calls: [{ name: child, sequence: 0, function: "f" }],
  });
  return (await parked)[0]!;
}

describe("engine on fakes: children created assigned", () => {
  it("a child a parked lease takes is created assigned: no Running write (create → Succeeded), nothing runs unseen", async () => {
    const { root, parked } = await rootAndParkedLease({}, 2);
    const c0 = childName("r", "r", 0);
    const c1 = childName("r", "r", 1);
    const made = await h.req("pf", "POST", "/calls/r/children", {
      attempt: root.attempt,
      calls: [
        { name: c0, sequence: 0, function: "g", args: [{ value: 1 }] },
        // Not ready (its input runs): it waits for the queue.
        { name: c1, sequence: 1, function: "g", args: [{ call: c0 }] },
      ],
    });
    expect(made.status).toBe(200);
    const assigned = await parked;
    expect(assigned).toEqual([expect.objectContaining({ call: c0, attempt: 1, args: [{ value: 1 }], isRoot: false })]);
    // The create carried the assignment: durable before the pod heard of it.
    const stored = h.api.get(`ns/${c0}`)!;
    expect(stored.status).toBeUndefined();
    expect(JSON.parse(stored.metadata.annotations![ASSIGNED_ANNOTATION]!)).toMatchObject({ pod: "pg", attempt: 1 });
    expect(h.call(c0)!.status).toMatchObject({ phase: "Running", pod: "pg", attempts: 1 });
    expect(h.engine.dispatcher.podActivity("ns", "pg")).toMatchObject({ running: 1 });
    const hb = await h.req("pg", "POST", "/heartbeat", { calls: [{ call: c0, attempt: 1 }] });
    expect(hb.json().cancel).toEqual([]);
    expect((await result("pg", c0, 1, { value: 10 })).status).toBe(200);
    // One status write, carrying what Running would have.
    expect(h.api.writesOf(c0)).toEqual(["create", "status:Succeeded"]);
    expect(h.api.get(`ns/${c0}`)!.status).toMatchObject({
      phase: "Succeeded",
      pod: "pg",
      attempts: 1,
      startTime: expect.any(String),
      queuedTime: expect.any(String),
      output: { value: 10 },
    });
    const [g1] = await lease("pg");
    expect(g1).toMatchObject({ call: c1, args: [{ value: 10 }] });
    expect(h.api.writesOf(c1)).toEqual(["create", "status:Running"]);
  });

  it("a call created assigned that still runs after the waiting threshold gets its Running written, once", async () => {
    const { root, parked } = await rootAndParkedLease({ waitingPhaseWriteAfterMs: 30 });
    const c0 = childName("r", "r", 0);
    await h.req("pf", "POST", "/calls/r/children", {
      attempt: root.attempt,
      calls: [{ name: c0, sequence: 0, function: "g", args: [{ value: 1 }] }],
    });
    expect(await parked).toEqual([expect.objectContaining({ call: c0 })]);
    await h.until("Running written", () => h.api.get(`ns/${c0}`)!.status?.phase === "Running");
    expect(h.api.get(`ns/${c0}`)!.status).toMatchObject({ pod: "pg", attempts: 1, startTime: expect.any(String) });
    await new Promise((res) => setTimeout(res, 80));
    expect(h.api.writesOf(c0)).toEqual(["create", "status:Running"]);
    await result("pg", c0, 1, { value: 2 });
    expect(h.api.writesOf(c0)).toEqual(["create", "status:Running", "status:Succeeded"]);
  });

  it("a create that fails gives the reserved lease back; the child goes through the queue on the retry", async () => {
    const { root, parked } = await rootAndParkedLease();
    const c0 = childName("r", "r", 0);
    const body = { attempt: root.attempt, calls: [{ name: c0, sequence: 0, function: "g", args: [{ value: 1 }] }] };
    h.api.refuseCreate.set(c0, new KubeApiError(500, "InternalError", "etcd hiccup", "POST", c0));
    expect((await h.req("pf", "POST", "/calls/r/children", body)).status).toBeGreaterThanOrEqual(500);
    expect(h.engine.dispatcher.leaseWaiting("ns", "pg")).toBe(true);
    h.api.refuseCreate.delete(c0);
    expect((await h.req("pf", "POST", "/calls/r/children", body)).status).toBe(200);
    expect(await parked).toEqual([expect.objectContaining({ call: c0, attempt: 1 })]);
    expect(h.api.get(`ns/${c0}`)!.metadata.annotations?.[ASSIGNED_ANNOTATION]).toBeDefined();
  });

  it("a call created assigned whose pod never heard of it (lease answer lost in the restart) is re-run", async () => {
    h = await harness({ heartbeatIntervalMs: 50 });
    h.pods.set("pf", "f");
    h.pods.set("pg", "g");
    await h.createRoot("r");
    const c0 = childName("r", "r", 0);
    // As the previous operator created it: assigned to pg, whose lease answer never arrived.
    const at = new Date().toISOString();
    await h.api.create({
      apiVersion: API_VERSION,
      kind: "FunctionCall",
      metadata: {
        name: c0,
        namespace: "ns",
        annotations: {
          [ASSIGNED_ANNOTATION]: JSON.stringify({ pod: "pg", attempt: 1, startTime: at, queuedTime: at }),
        },
      },
      spec: { application: "app", function: "g", parent: "r", request: "r", sequence: 0, args: [{ value: 1 }] },
    });
    await h.until("seen Running", () => h.call(c0)?.status?.phase === "Running");
    const leased = h.req("pg", "POST", "/lease", { capacity: 1, waitMs: 3000 });
    // Its heartbeats do not list the call: lost two intervals after the operator took it up.
    await h.req("pg", "POST", "/heartbeat", { calls: [], lease: null });
    await new Promise((res) => setTimeout(res, 150));
    await h.req("pg", "POST", "/heartbeat", { calls: [], lease: null });
    expect((await leased).json().assignments[0]).toMatchObject({ call: c0, attempt: 2 });
    expect(h.api.get(`ns/${c0}`)!.status).toMatchObject({ phase: "Running", pod: "pg", attempts: 2 });
  });

  it("an assignment annotation on a root call (anyone's to create) is not an assignment: the call is queued", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    const at = new Date().toISOString();
    const forged = JSON.stringify({ pod: "pf", attempt: 1, startTime: at, queuedTime: at });
    await h.api.create({
      apiVersion: API_VERSION,
      kind: "FunctionCall",
      metadata: { name: "forged", namespace: "ns", annotations: { [ASSIGNED_ANNOTATION]: forged } },
      spec: { application: "app", function: "f" },
    });
    const [a] = await lease("pf");
    expect(a).toMatchObject({ call: "forged", attempt: 1 });
    expect(h.api.writesOf("forged")).toEqual(["create", "status:Running"]);
  });
});

describe("engine on fakes: tail chains of links created assigned", () => {
  it("the root follows the newest link and passed links are settled when each link is created assigned", async () => {
    h = await harness();
    let cur = await h.runRoot("t");
    const links = [cur.call];
    for (let i = 0; i < 30; i++) {
      const next = childName("t", cur.call, 0);
      const took = await childTakenByParkedLease(cur, next);
      expect(took.call).toBe(next);
      expect(
        (await h.req("pf", "POST", `/calls/${cur.call}/tail`, { attempt: cur.attempt, tailCall: next })).status,
      ).toBe(200);
      cur = took;
      links.push(cur.call);
    }
    const last = cur.call;
    await h.until("every passed link settled", () => links.slice(1, -1).every((l) => !h.call(l)));
    expect(h.call("t")!.status).toMatchObject({ phase: "Delegated", tailCall: last });
    expect(h.api.writesOf(links[5]!)).toEqual(["create", "status:Delegated", "patchMeta"]);
    const before = h.api.writes.length;
    await result("pf", last, 1, { value: "end" });
    await h.until("root done", () => h.call("t")?.status?.phase === "Succeeded");
    expect(h.api.writes.slice(before).map((w) => w.name)).toEqual([last, "t"]);
  });
});

describe("engine on fakes: a tail chain that runs ahead of its parent's tail report", () => {
  it("a link does not move while its parent still runs; the head passes every link once the parent delegates", async () => {
    h = await harness();
    const root = await h.runRoot("r");
    // r makes x; x runs, makes y and delegates to it; y does the same with z: all before r reports.
    const x = childName("r", "r", 0);
    const step = childTakenByParkedLease;
    const xa = await step(root, x);
    const y = childName("r", x, 0);
    const ya = await step(xa, y);
    await h.req("pf", "POST", `/calls/${x}/tail`, { attempt: 1, tailCall: y });
    const z = childName("r", y, 0);
    const za = await step(ya, z);
    await h.req("pf", "POST", `/calls/${y}/tail`, { attempt: 1, tailCall: z });
    await h.until("y Delegated", () => h.call(y)?.status?.phase === "Delegated");
    await new Promise((res) => setTimeout(res, 30));
    // x was no head: r, still running, may (and does) delegate to it.
    expect(h.call(x)!.status).toMatchObject({ phase: "Delegated", tailCall: y });
    await h.req("pf", "POST", `/calls/r/tail`, { attempt: root.attempt, tailCall: x });
    await h.until(
      "r waits on z, x and y settled",
      () => h.call("r")?.status?.tailCall === z && !h.call(x) && !h.call(y),
    );
    const before = h.api.writes.length;
    await result("pf", za.call, 1, { value: 3 });
    await h.until("r done", () => h.call("r")?.status?.phase === "Succeeded");
    expect(h.api.writes.slice(before).map((w) => w.name)).toEqual([z, "r"]);
  });

  it("a link its running parent waits on is a head: it moves past the links it passed", async () => {
    h = await harness();
    const root = await h.runRoot("r");
    const x = childName("r", "r", 0);
    const y = childName("r", x, 0);
    const z = childName("r", y, 0);
    const make = async (parent: string, child: string) => {
      await h.req("pf", "POST", `/calls/${parent}/children`, {
        attempt: 1,
        calls: [{ name: child, sequence: 0, function: "f" }],
      });
      return (await lease("pf"))[0]!;
    };
    await make("r", x);
    await make(x, y);
    await h.req("pf", "POST", `/calls/${x}/tail`, { attempt: 1, tailCall: y });
    await make(y, z);
    await h.req("pf", "POST", `/calls/${y}/tail`, { attempt: 1, tailCall: z });
    await h.until("y Delegated", () => h.call(y)?.status?.phase === "Delegated");
    expect(h.call(x)!.status?.tailCall).toBe(y);
    // r awaits x (a sync call): x is read now, so it waits on z directly and y is settled.
    const waited = h.req("pf", "POST", "/wait", { calls: [x], mode: "all", waitMs: 3000 });
    await h.until("x moved to z, y settled", () => h.call(x)?.status?.tailCall === z && !h.call(y));
    await result("pf", z, 1, { value: 7 });
    expect((await waited).json()).toEqual({ outcomes: [{ call: x, phase: "Succeeded", output: { value: 7 } }] });
    expect(root.call).toBe("r");
  });
});
