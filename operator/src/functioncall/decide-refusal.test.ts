import { describe, expect, it } from "vitest";
import { decideCall } from "./decide-call.js";
import { PICKLE_RULE, decideRefused, isRefusalPatch, pickleFields, refuseRootPickles } from "./decide-refusal.js";
import { memoryView, mkCall, mkChild } from "./testing.js";

const NOW = 1_000_000;
const P = { pickle: "gASV" };

describe("root calls with pickles", () => {
  it("names every field that holds a pickle, in spec order", () => {
    const c = mkCall("r", { args: [{ value: 1 }, P], kwargs: { a: { value: 2 }, b: P } });
    expect(pickleFields(c)).toEqual(["spec.args[1].pickle", "spec.kwargs.b.pickle"]);
    const m = mkCall("r", { map: { items: [{ value: 1 }, P] } });
    expect(pickleFields(m)).toEqual(["spec.map.items[1].pickle"]);
    const r = mkCall("r", { reduce: { items: [P], initial: P } });
    expect(pickleFields(r)).toEqual(["spec.reduce.items[0].pickle", "spec.reduce.initial.pickle"]);
    // A JSON value that happens to have a `pickle` key is data, not a pickle.
    expect(pickleFields(mkCall("r", { args: [{ value: { pickle: "x" } }] }))).toEqual([]);
  });

  it("a root with a pickle fails before it is queued; a child with one is dispatched", () => {
    const root = mkCall("r", { args: [P] });
    const a = decideCall(root, memoryView([root]), NOW);
    expect(a.map((x) => x.type)).toEqual(["dequeue", "status"]);
    expect(a[1]).toMatchObject({
      type: "status",
      patch: {
        phase: "Failed",
        error: {
          type: "InvalidCall",
          reason: "invalid_call",
          message: expect.stringContaining(`spec.args[0].pickle: ${PICKLE_RULE}`),
        },
      },
    });
    const parent = mkCall("r", {}, { phase: "Running", pod: "p", attempts: 1 });
    const child = mkChild("c", "r", "r", 0, { args: [P] });
    expect(decideCall(child, memoryView([parent, child]), NOW)).toEqual([{ type: "enqueue" }]);
  });

  it("a root already running with a pickle (created before this check) is aborted too", () => {
    const root = mkCall("r", { kwargs: { x: P } }, { phase: "Running", pod: "p", attempts: 2 });
    const a = decideCall(root, memoryView([root]), NOW);
    expect(a.slice(0, 2)).toEqual([{ type: "dequeue" }, { type: "cancelAttempt", pod: "p", attempt: 2 }]);
    expect(a[2]).toMatchObject({ patch: { phase: "Failed" } });
  });

  it("a finished root is left alone", () => {
    expect(refuseRootPickles(mkCall("r", { args: [P] }, { phase: "Failed" }), NOW)).toBeUndefined();
  });
});

describe("decideRefused", () => {
  it("fails the call with the refusal, aborting its running attempt", () => {
    const c = mkCall("r", {}, { phase: "Running", pod: "p", attempts: 1 });
    const a = decideRefused(c, "the API server refused to create FunctionCall ns/x (422 Invalid): rule", NOW);
    expect(a).toEqual([
      { type: "dequeue" },
      { type: "cancelAttempt", pod: "p", attempt: 1 },
      { type: "event", eventType: "Warning", reason: "ObjectRefused", message: expect.stringContaining("ns/x") },
      {
        type: "status",
        patch: expect.objectContaining({
          phase: "Failed",
          error: {
            type: "ObjectRefused",
            reason: "invalid_call",
            message: expect.stringContaining("(422 Invalid): rule"),
          },
        }),
      },
    ]);
    expect(isRefusalPatch((a[3] as { patch: Record<string, unknown> }).patch)).toBe(true);
  });

  it("does nothing for a call that is gone or over", () => {
    expect(decideRefused(undefined, "m", NOW)).toEqual([]);
    expect(decideRefused(mkCall("r", {}, { phase: "Succeeded" }), "m", NOW)).toEqual([]);
  });
});
