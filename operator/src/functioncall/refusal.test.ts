// The engine on fakes whose creates check names and label values as the apiserver does (422):
// long request names no longer make children the API server refuses, and a write refused for
// good fails the call that needed it, with a reason naming the object and the rule, instead of
// being retried forever.
import { afterEach, describe, expect, it } from "vitest";
import { childName, requestName } from "../../../protocol/index.js";
import { KubeApiError } from "../kube/index.js";
import { type Harness, harness } from "./test-harness.js";

let h: Harness;
afterEach(async () => h?.close());

const APP63 = "a".repeat(30) + "-" + "b".repeat(32);

async function leaseOne(pod: string): Promise<{ call: string; attempt: number }> {
  const r = await h.req(pod, "POST", "/lease", { capacity: 1, waitMs: 2000 });
  expect(r.status).toBe(200);
  return r.json().assignments[0];
}

/** A pod answering every call of its function with the sum of its arguments. */
async function serve(pod: string, stop: () => boolean): Promise<void> {
  while (!stop()) {
    const r = await h.req(pod, "POST", "/lease", { capacity: 8, waitMs: 100 });
    for (const a of r.json().assignments as { call: string; attempt: number }[]) {
      // A reduce step's accumulator is the previous step's output, passed by reference.
      const args = (h.call(a.call)!.spec.args ?? []).map((v) =>
        Number(v.call !== undefined ? h.call(v.call)?.status?.output?.value : v.value),
      );
      await h.req(pod, "POST", `/calls/${a.call}/result`, {
        attempt: a.attempt,
        output: { value: args.reduce((x, y) => x + y, 0) },
      });
    }
  }
}

describe("names at the limits", () => {
  it("a map and a reduce in a request of a 63-character application finish (grandchildren carry hashed parent labels)", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    h.pods.set("pg", "g");
    const r = requestName("ns", APP63, "key");
    expect(r.length).toBe(53);
    await h.createRoot(r);
    const root = await leaseOne("pf");
    const m = childName(r, r, 0);
    const red = childName(r, r, 1);
    const made = await h.req("pf", "POST", `/calls/${r}/children`, {
      attempt: root.attempt,
      calls: [
        { name: m, sequence: 0, function: "g", map: { items: [{ value: 1 }, { value: 2 }, { value: 3 }] } },
        {
          name: red,
          sequence: 1,
          function: "g",
          reduce: { items: [{ value: 1 }, { value: 2 }], initial: { value: 10 } },
        },
      ],
    });
    expect(made.status).toBe(200);
    let done = false;
    const pod = serve("pg", () => done);
    const w = await h.req("pf", "POST", "/wait", { calls: [m, red], mode: "all", waitMs: 5000 });
    done = true;
    await pod;
    const outcomes = w.json().outcomes as { call: string; phase: string; output?: { value: unknown } }[];
    expect(outcomes.map((o) => [o.phase, o.output?.value])).toEqual([
      ["Succeeded", [1, 2, 3]],
      ["Succeeded", 13],
    ]);
    const item = h.api.get(`ns/${childName(r, m, 0)}`)!;
    expect(item.metadata.name!.length).toBe(70);
    expect(item.metadata.labels!["trellis.dev/parent"]!.length).toBeLessThanOrEqual(63);
    expect(item.metadata.labels!["trellis.dev/request"]).toBe(r);
  });
});

const invalid = (name: string, rule: string) =>
  new KubeApiError(422, "Invalid", `POST functioncalls: ${rule}`, "POST", "functioncalls", {
    message: `FunctionCall.trellis.dev "${name}" is invalid: ${rule}`,
    reason: "Invalid",
    code: 422,
  });

describe("writes refused for good", () => {
  it("a refused map item create fails the map (reason naming the object and the rule) and the request, once", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    await h.createRoot("r");
    const root = await leaseOne("pf");
    const m = childName("r", "r", 0);
    const bad = childName("r", m, 1);
    h.api.refuseCreate.set(bad, invalid(bad, "spec.args[0]: Invalid value: refused by a policy of the cluster"));
    await h.req("pf", "POST", "/calls/r/children", {
      attempt: root.attempt,
      calls: [{ name: m, sequence: 0, function: "g", map: { items: [{ value: 1 }, { value: 2 }] } }],
    });
    const failed = await h.until("map failed", () => h.call(m)?.status?.phase === "Failed" && h.call(m));
    expect(failed.status!.error).toMatchObject({ type: "ObjectRefused", reason: "invalid_call" });
    expect(failed.status!.error!.message).toBe(
      `the API server refused to create FunctionCall ns/${bad} (422 Invalid): FunctionCall.trellis.dev "${bad}" is invalid: spec.args[0]: Invalid value: refused by a policy of the cluster`,
    );
    expect(h.events.events).toContainEqual(expect.objectContaining({ name: m, reason: "ObjectRefused" }));
    // Not retried: one create of the refused item, one Failed write of the map.
    await new Promise((r) => setTimeout(r, 100));
    expect(h.api.writesOf(bad)).toEqual(["create"]);
    expect(h.api.writesOf(m).filter((w) => w === "status:Failed")).toHaveLength(1);
  });

  it("a child create refused on the runtime API's path fails the running parent and answers the pod 400", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    await h.createRoot("r");
    const root = await leaseOne("pf");
    const c = childName("r", "r", 0);
    h.api.refuseCreate.set(c, invalid(c, 'metadata.labels: Invalid value: "x": must be no more than 63 characters'));
    const made = await h.req("pf", "POST", "/calls/r/children", {
      attempt: root.attempt,
      calls: [{ name: c, sequence: 0, function: "g" }],
    });
    expect(made.status).toBe(400);
    expect(made.json()).toMatchObject({ code: "invalid_body" });
    expect(made.json().message).toContain(`FunctionCall ns/${c} (422 Invalid)`);
    const r = h.call("r")!;
    expect(r.status).toMatchObject({ phase: "Failed", error: { type: "ObjectRefused", reason: "invalid_call" } });
    expect(r.status!.error!.message).toContain("must be no more than 63 characters");
  });

  it("a transient create error is not a refusal: the pod is answered 500 and retries; the parent keeps running", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    await h.createRoot("r");
    const root = await leaseOne("pf");
    const c = childName("r", "r", 0);
    h.api.refuseCreate.set(c, new KubeApiError(503, "ServiceUnavailable", "busy", "POST", "functioncalls"));
    const first = await h.req("pf", "POST", "/calls/r/children", {
      attempt: root.attempt,
      calls: [{ name: c, sequence: 0, function: "g" }],
    });
    expect(first.status).toBe(500);
    expect(h.call("r")!.status?.phase).toBe("Running");
    h.api.refuseCreate.delete(c);
    const again = await h.req("pf", "POST", "/calls/r/children", {
      attempt: root.attempt,
      calls: [{ name: c, sequence: 0, function: "g" }],
    });
    expect(again.status).toBe(200);
    expect(h.api.get(`ns/${c}`)).toBeDefined();
  });

  it("a status write refused as invalid records a failure instead of looping", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    await h.createRoot("r");
    const root = await leaseOne("pf");
    h.api.refuseStatus.set("r", (s) =>
      s.phase === "Succeeded" ? invalid("r", "status.output: Invalid value: too deep") : undefined,
    );
    const res = await h.req("pf", "POST", "/calls/r/result", { attempt: root.attempt, output: { value: 1 } });
    expect(res.status).toBe(200);
    expect(h.call("r")!.status).toMatchObject({ phase: "Failed", error: { type: "ObjectRefused" } });
    expect(h.call("r")!.status!.error!.message).toContain(
      "the API server refused to update the status of FunctionCall ns/r (422 Invalid)",
    );
    expect(h.api.writesOf("r")).toEqual(["create", "status:Running", "status:Succeeded", "status:Failed"]);
  });

  it("when even the failure write is refused, an Event says so and nothing loops", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    await h.createRoot("r");
    const root = await leaseOne("pf");
    h.api.refuseStatus.set("r", () => invalid("r", "status: refused"));
    await h.req("pf", "POST", "/calls/r/result", { attempt: root.attempt, output: { value: 1 } });
    await new Promise((r) => setTimeout(r, 100));
    expect(h.api.writesOf("r")).toEqual(["create", "status:Running", "status:Succeeded", "status:Failed"]);
    expect(h.events.events).toContainEqual(expect.objectContaining({ name: "r", reason: "ObjectRefused" }));
  });
});

describe("root calls with pickles", () => {
  it("fail before dispatch, naming the field and the rule", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    await h.createRoot("r", { args: [{ value: 1 }, { pickle: "gASVAAAA" }] });
    const failed = await h.until("root failed", () => h.call("r")?.status?.phase === "Failed" && h.call("r"));
    expect(failed.status!.error).toMatchObject({
      type: "InvalidCall",
      reason: "invalid_call",
      message: expect.stringContaining(
        "spec.args[1].pickle: pickled values are accepted only in calls the operator creates",
      ),
    });
    expect(h.engine.dispatcher.queuedAndRunning("ns", "app", "f")).toMatchObject({ queued: 0 });
    expect(h.api.writesOf("r")).toEqual(["create", "status:Failed"]);
  });
});
