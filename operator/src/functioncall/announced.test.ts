import { afterEach, describe, expect, it } from "vitest";
import { type Assignment, childName } from "../../../protocol/index.js";
import { KubeApiError } from "../kube/index.js";
import { AnnouncedChildren } from "./announced.js";
import type { Call } from "./calls.js";
import { CallGraph } from "./graph.js";
import { type Harness, harness } from "./test-harness.js";
import { mkChild } from "./testing.js";

describe("children created but not yet in the graph", () => {
  const setup = (ttlMs = 1000) => {
    let now = 0;
    const graph = new CallGraph();
    const a = new AnnouncedChildren(graph, () => now, ttlMs);
    const child = (name: string): Call => {
      const c = mkChild(name, "r", "r", 0);
      c.metadata.resourceVersion = "5";
      return c;
    };
    return { graph, a, child, advance: (ms: number) => (now += ms) };
  };

  it("answers the request of a recorded child until the graph sees it or the record expires", () => {
    const { graph, a, child, advance } = setup();
    a.record("ns", "r", ["c1", "c2"]);
    expect(a.requestOf("ns", "c1")).toBe("r");
    expect(a.requestOf("other", "c1")).toBeUndefined();
    graph.observe(child("c1"));
    expect(a.requestOf("ns", "c1")).toBeUndefined(); // in the graph now: its own request is read there
    advance(1000);
    expect(a.requestOf("ns", "c2")).toBeUndefined(); // never seen: expired, a wait on it is refused
    a.record("ns", "r", ["c3"]); // recording prunes the expired ones
    expect(a.size()).toBe(1);
  });

  it("does not record children the graph already holds", () => {
    const { graph, a, child } = setup();
    graph.observe(child("c1"));
    a.record("ns", "r", ["c1"]);
    expect(a.size()).toBe(0);
  });

  it("visible: resolves once the graph holds every name, or false at the deadline", async () => {
    const { graph, a, child } = setup();
    a.record("ns", "r", ["c1", "c2"]);
    const both = a.visible("ns", ["c1", "c2"], 5000);
    graph.observe(child("c1"));
    graph.observe(child("c2"));
    expect(await both).toBe(true);
    expect(await a.visible("ns", ["c1"], 5000)).toBe(true);
    a.record("ns", "r", ["c3"]);
    expect(await a.visible("ns", ["c3"], 0)).toBe(false);
    expect(await a.visible("ns", ["c3"], 20)).toBe(false);
    graph.observe(child("c3")); // no watcher left behind by the timed-out one
    expect(await a.visible("ns", ["c3"], 20)).toBe(true);
  });
});

describe("/wait on a child whose create answer was lost", () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  const lease = async (pod: string): Promise<Assignment[]> => {
    const r = await h.req(pod, "POST", "/lease", { capacity: 1, waitMs: 2000 });
    expect(r.status).toBe(200);
    return r.json().assignments;
  };

  /** The child's create commits but its answer is lost, and its watch event is held back. */
  const loseCreateAnswer = (name: string) => {
    const held: (() => void)[] = [];
    const api = h.api as unknown as {
      create: (o: Call) => Promise<Call>;
      emit: (type: string, obj: Call, old: Call | undefined) => void;
    };
    const create = api.create.bind(api);
    const emit = api.emit.bind(api);
    let lost = false;
    api.create = async (o) => {
      const out = await create(o);
      if (o.metadata.name === name && !lost) {
        lost = true;
        throw new KubeApiError(504, "Timeout", "the answer was lost", "POST", name);
      }
      return out;
    };
    api.emit = (type, obj, old) => {
      if (obj.metadata.name === name) held.push(() => emit(type, obj, old));
      else emit(type, obj, old);
    };
    return () => {
      api.emit = emit;
      held.splice(0).forEach((f) => f());
    };
  };

  it("holds the wait until the graph sees the child instead of answering call_not_found", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    await h.createRoot("r");
    const [root] = await lease("pf");
    const c0 = childName("r", "r", 0);
    const release = loseCreateAnswer(c0);
    const body = { attempt: root!.attempt, calls: [{ name: c0, sequence: 0, function: "g" }] };
    const first = await h.req("pf", "POST", "/calls/r/children", body);
    expect(first.status).toBe(500); // transient: the sidecar retries
    const again = await h.req("pf", "POST", "/calls/r/children", body);
    expect(again.status).toBe(200); // AlreadyExists: the child is made
    expect(h.engine.graph.get("ns", c0)).toBeUndefined(); // ...but the graph has not seen it yet

    // A long-poll that ends before the graph catches up: no outcome, no error; the sidecar asks again.
    const early = await h.req("pf", "POST", "/wait", { calls: [c0], mode: "any", waitMs: 50 });
    expect(early.status).toBe(200);
    expect(early.json()).toEqual({ outcomes: [] });

    const waiting = h.req("pf", "POST", "/wait", { calls: [c0], mode: "any", waitMs: 5000 });
    release();
    await h.until("child seen", () => h.engine.graph.get("ns", c0));
    h.pods.set("pg", "g");
    const [child] = await lease("pg");
    expect(child).toMatchObject({ call: c0 });
    expect((await h.req("pg", "POST", `/calls/${c0}/result`, { attempt: 1, output: { value: 7 } })).status).toBe(200);
    const w = await waiting;
    expect(w.status).toBe(200);
    expect(w.json()).toEqual({ outcomes: [{ call: c0, phase: "Succeeded", output: { value: 7 } }] });
  });

  it("refuses a name that is no child this pod created, at once and for good", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    await h.createRoot("r");
    await lease("pf");
    const never = childName("r", "r", 5);
    const w = await h.req("pf", "POST", "/wait", { calls: [never], mode: "any", waitMs: 5000 });
    expect(w.status).toBe(404);
    expect(w.json()).toMatchObject({ code: "call_not_found", message: expect.stringContaining(never) });
  });
});
