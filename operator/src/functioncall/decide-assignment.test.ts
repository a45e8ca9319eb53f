import { describe, expect, it } from "vitest";
import type { Call } from "./calls.js";
import { SHARD_ANNOTATION } from "../../../protocol/index.js";
import { decideAssignment, dependentsReadyWith, unassignPatch } from "./decide-assignment.js";
import { memoryView, mkCall, mkChild } from "./testing.js";

const NOW = Date.parse("2026-03-01T00:00:00Z");
const READY = NOW - 1500;
const iso = (ms: number) => new Date(ms).toISOString();
const decide = (c: Call | undefined, others: Call[] = []) =>
  decideAssignment(c, memoryView(c ? [c, ...others] : others), "p1", READY, NOW);

describe("decideAssignment", () => {
  it("the Running patch (pod, attempts+1, startTime, queuedTime, retryAfter cleared), then the pod runs it", () => {
    const d = decide(mkCall("r", { args: [{ value: 2 }], headers: { h: "v" } }));
    expect(d).toEqual({
      type: "assign",
      actions: [
        {
          type: "status",
          patch: {
            phase: "Running",
            pod: "p1",
            attempts: 1,
            startTime: iso(NOW),
            retryAfter: null,
            queuedTime: iso(READY),
          },
        },
        { type: "assigned", pod: "p1", attempt: 1, queuedMs: 1500 },
      ],
      assignment: {
        call: "r",
        attempt: 1,
        function: "f",
        request: "r",
        args: [{ value: 2 }],
        kwargs: {},
        headers: { h: "v" },
        timeoutSeconds: 300,
        isRoot: true,
      },
    });
  });

  it("a retry keeps its first queuedTime and counts the next attempt", () => {
    const c = mkCall("r", {}, { phase: "Queued", attempts: 2, queuedTime: iso(0), retryAfter: iso(NOW - 1) });
    const d = decide(c);
    expect(d.type).toBe("assign");
    if (d.type !== "assign") return;
    expect(d.actions[0]).toEqual({
      type: "status",
      patch: { phase: "Running", pod: "p1", attempts: 3, startTime: iso(NOW), retryAfter: null },
    });
    expect(d.assignment.attempt).toBe(3);
  });

  it("{call} inputs are resolved to their outputs; the timeout is the call's policy", () => {
    const a = mkChild("a", "r", "r", 0, {}, { phase: "Succeeded", output: { value: 10 } });
    const c = mkChild("c", "r", "r", 1, { args: [{ call: "a" }], kwargs: { k: { call: "a" } }, timeoutSeconds: 7 });
    const d = decide(c, [mkCall("r"), a]);
    expect(d.type === "assign" && d.assignment).toMatchObject({
      args: [{ value: 10 }],
      kwargs: { k: { value: 10 } },
      timeoutSeconds: 7,
      isRoot: false,
      request: "r",
    });
  });

  it("not before its retryAfter or startAfter: back to the queue until then", () => {
    expect(decide(mkCall("r", {}, { phase: "Queued", retryAfter: iso(NOW + 5000) }))).toEqual({
      type: "defer",
      notBefore: NOW + 5000,
    });
    expect(decide(mkCall("r", { startAfter: iso(NOW + 9000) }))).toEqual({ type: "defer", notBefore: NOW + 9000 });
  });

  const skips: { name: string; call: () => Call | undefined; others?: Call[] }[] = [
    { name: "gone", call: () => undefined },
    { name: "already running", call: () => mkCall("r", {}, { phase: "Running", pod: "p2", attempts: 1 }) },
    { name: "finished", call: () => mkCall("r", {}, { phase: "Succeeded" }) },
    { name: "being deleted", call: () => mkCall("r", {}, undefined, { deletionTimestamp: iso(NOW) }) },
    { name: "a map (never runs in a pod)", call: () => mkCall("r", { map: { items: [] } }) },
    { name: "an input still running", call: () => mkCall("r", { args: [{ call: "a" }] }), others: [mkCall("a")] },
  ];
  for (const tc of skips)
    it(`skips a call ${tc.name}`, () => {
      expect(decide(tc.call(), tc.others)).toEqual({ type: "skip" });
    });
});

describe("dependentsReadyWith", () => {
  const input = mkChild("a", "r", "r", 0, {}, { phase: "Running", pod: "p1", attempts: 1 });
  const dep = (name: string, seq: number, spec = {}, status?: Call["status"], meta = {}) =>
    mkCall(name, { parent: "r", request: "r", sequence: seq, args: [{ call: "a" }], ...spec }, status, meta);

  it("the dependents the result makes ready, in a view that shows the input Succeeded with the output", () => {
    const calls = [
      mkCall("r"),
      input,
      dep("d1", 1),
      dep("d2", 2, { kwargs: { k: { call: "b" } } }), // b still runs
      mkChild("b", "r", "r", 3),
      dep("d3", 4, {}, { phase: "Running", pod: "p2", attempts: 1 }), // already running
      dep("d4", 5, { startAfter: iso(NOW - 1) }), // a start time of its own: the queue's
      dep("d5", 6, {}, undefined, { annotations: { [SHARD_ANNOTATION]: "s" } }), // a map item
      dep("d6", 7, {}, { phase: "Queued", attempts: 1 }),
    ];
    const { view, ready } = dependentsReadyWith(input, { value: 10 }, memoryView(calls), 4);
    expect(ready.map((c) => c.metadata.name)).toEqual(["d1", "d6"]);
    expect(view.call("a")!.status).toMatchObject({ phase: "Succeeded", output: { value: 10 }, pod: "p1" });
    const d = decideAssignment(ready[0], view, "p3", NOW, NOW);
    expect(d.type === "assign" && d.assignment.args).toEqual([{ value: 10 }]);
  });

  it("at most `max`", () => {
    const calls = [input, ...[1, 2, 3, 4, 5].map((i) => dep(`d${i}`, i))];
    expect(dependentsReadyWith(input, { value: 1 }, memoryView(calls), 4).ready).toHaveLength(4);
  });
});

describe("unassignPatch", () => {
  it("puts back each field the Running patch set, removing those the call did not have", () => {
    const running = { phase: "Running", pod: "p1", attempts: 2, startTime: iso(NOW), retryAfter: null };
    expect(unassignPatch({ phase: "Queued", attempts: 1, queuedTime: iso(0) }, running)).toEqual({
      phase: "Queued",
      pod: null,
      attempts: 1,
      startTime: null,
      retryAfter: null,
    });
    expect(unassignPatch(undefined, { ...running, queuedTime: iso(NOW) })).toEqual({
      phase: null,
      pod: null,
      attempts: null,
      startTime: null,
      retryAfter: null,
      queuedTime: null,
    });
  });
});
