import { describe, expect, it } from "vitest";
import type { Effect } from "./actions.js";
import type { Call } from "./calls.js";
import { type GraphIndex, decideGraphChange } from "./decide-graph.js";
import { mkCall, mkChild } from "./testing.js";

/** A graph index over a fixed set of calls and relations. */
function index(calls: Call[], rel: Partial<Record<keyof Omit<GraphIndex, "call">, Record<string, string[]>>> = {}) {
  const byName = new Map(calls.map((c) => [c.metadata.name!, c]));
  const of = (k: keyof typeof rel) => (n: string) => rel[k]?.[n] ?? [];
  return {
    call: (n: string) => byName.get(n),
    dependentsOf: of("dependentsOf"),
    delegatorsOf: of("delegatorsOf"),
    childrenOf: of("childrenOf"),
    callsOfRequest: of("callsOfRequest"),
  };
}
const running = (pod = "p1", attempts = 1): Call["status"] => ({ phase: "Running", pod, attempts });
const types = (e: Effect[]) => e.map((x) => x.type);
const reconciled = (e: Effect[]) => e.flatMap((x) => (x.type === "reconcile" ? x.names : []));

describe("decideGraphChange", () => {
  it("a new call is reconciled", () => {
    expect(decideGraphChange(undefined, mkCall("r"), index([]))).toEqual([{ type: "reconcile", names: ["r"] }]);
  });

  it("Running or Delegated entered, deletion started: the call's own reconcile runs at once", () => {
    const g = index([]);
    expect(decideGraphChange(mkCall("c"), mkCall("c", {}, running()), g)).toEqual([
      { type: "reconcile", names: ["c"] },
    ]);
    expect(
      decideGraphChange(mkCall("c", {}, running()), mkCall("c", {}, { phase: "Delegated", tailCall: "t" }), g),
    ).toEqual([
      { type: "release", pod: "p1" },
      { type: "reconcile", names: ["c"] },
    ]);
    const deleting = mkCall("c", {}, { phase: "Blocked" }, { deletionTimestamp: "2026-03-01T00:00:00Z" });
    expect(decideGraphChange(mkCall("c", {}, { phase: "Blocked" }), deleting, g)).toEqual([
      { type: "reconcile", names: ["c"] },
    ]);
    expect(decideGraphChange(mkCall("c", {}, { phase: "Blocked" }), mkCall("c", {}, { phase: "Queued" }), g)).toEqual(
      [],
    );
  });

  it("tail chains: a new Delegated call's delegators, a re-pointed call and the link it left are reconciled", () => {
    const d = (tail: string) => mkCall("c", {}, { phase: "Delegated", tailCall: tail });
    const g = index([], { delegatorsOf: { c: ["head"] } });
    expect(reconciled(decideGraphChange(mkCall("c", {}, running()), d("t"), g))).toEqual(["c", "head"]);
    // The head moved from t to u: it checks u at once; t may have no reader left.
    expect(reconciled(decideGraphChange(d("t"), d("u"), g))).toEqual(["c", "t"]);
    expect(reconciled(decideGraphChange(d("t"), d("t"), g))).toEqual([]);
    // A settled link leaves the graph: its tail lost a delegator.
    expect(reconciled(decideGraphChange(d("t"), undefined, index([])))).toContain("t");
  });

  it("the pod is released when the attempt leaves it: re-queued, another attempt, another pod, gone", () => {
    const g = index([]);
    const prev = mkCall("c", {}, running("p1", 1));
    expect(decideGraphChange(prev, mkCall("c", {}, { ...running(), progress: { current: 1, total: 2 } }), g)).toEqual(
      [],
    );
    for (const next of [
      mkCall("c", {}, { phase: "Queued", pod: "p1", attempts: 1 }),
      mkCall("c", {}, running("p1", 2)),
      mkCall("c", {}, running("p2", 1)),
    ])
      expect(decideGraphChange(prev, next, g)).toContainEqual({ type: "release", pod: "p1" });
    expect(decideGraphChange(prev, undefined, g)).toContainEqual({ type: "release", pod: "p1" });
  });

  it("a finished child: waiters, progress, metrics, queue; its dependents, delegators and map are reconciled", () => {
    const m = mkChild("m", "r", "r", 0, { map: { items: [{ value: 1 }] } });
    const prev = mkChild("i", "m", "r", 0, {}, running());
    const next = mkChild("i", "m", "r", 0, {}, { phase: "Succeeded", pod: "p1", attempts: 1, output: { value: 1 } });
    const g = index([m], { dependentsOf: { i: ["d1"] }, delegatorsOf: { i: ["t1"] } });
    expect(decideGraphChange(prev, next, g)).toEqual([
      { type: "release", pod: "p1" },
      { type: "notifyWaiters" },
      { type: "forgetProgress" },
      { type: "finished", phase: "Succeeded" },
      { type: "dequeue" },
      { type: "reconcile", names: ["d1", "t1", "m"] },
    ]);
  });

  it("a finished call is reported once: a later change of a finished call decides nothing more", () => {
    const a = mkCall("c", {}, { phase: "Succeeded" });
    const b = mkCall("c", {}, { phase: "Succeeded", output: { value: 2 } });
    expect(decideGraphChange(a, b, index([]))).toEqual([]);
  });

  it("a root that finished is reconciled for its TTL; a failed root stops the rest of its request", () => {
    const g = index([], { callsOfRequest: { r: ["r", "c1", "c2"] } });
    const ok = decideGraphChange(mkCall("r", {}, running()), mkCall("r", {}, { phase: "Succeeded" }), g);
    expect(reconciled(ok)).toEqual(["r"]);
    const failed = decideGraphChange(mkCall("r", {}, running()), mkCall("r", {}, { phase: "Failed" }), g);
    expect(reconciled(failed)).toEqual(["r", "r", "c1", "c2"]);
  });

  it("a deleted request: its blobs and cached items go, all its calls are reconciled (cancelled)", () => {
    const g = index([], { callsOfRequest: { r: ["c1"] } });
    const e = decideGraphChange(mkCall("r", {}, { phase: "Blocked" }), undefined, g);
    expect(types(e)).toEqual(["notifyWaiters", "forgetProgress", "dequeue", "forgetItems", "deleteBlobs", "reconcile"]);
    expect(reconciled(e)).toEqual(["c1"]);
  });

  it("a failed map stops its items; a RequestError reconciles the root that it fails", () => {
    const g = index([], { childrenOf: { m: ["i0", "i1"] } });
    const m = (status?: Call["status"]) => mkChild("m", "r", "r", 0, { map: { items: [] } }, status);
    expect(reconciled(decideGraphChange(m({ phase: "Running" }), m({ phase: "Failed" }), g))).toEqual(["i0", "i1"]);
    const err = { type: "RequestError", message: "bad", reason: "request_error" as const };
    const c = (status: Call["status"]) => mkChild("c", "r", "r", 1, {}, status);
    expect(reconciled(decideGraphChange(c(running()), c({ phase: "Failed", error: err }), g))).toEqual(["r"]);
  });
});
