import { describe, expect, it } from "vitest";
import { type ChildCall, childName } from "../../../protocol/index.js";
import type { Action } from "./actions.js";
import type { Call } from "./calls.js";
import { type ChildrenDecision, decideChildren } from "./decide-children.js";
import { type ViewOptions, memoryView, mkCall, mkChild } from "./testing.js";

const NOW = Date.parse("2026-03-01T00:00:00Z");
const root = mkCall("r", {}, { phase: "Running", pod: "p1", attempts: 1 });
const c0 = childName("r", "r", 0);
const c1 = childName("r", "r", 1);
const child = (over: Partial<ChildCall> = {}): ChildCall => ({
  name: c0,
  sequence: 0,
  function: "g",
  args: [],
  kwargs: {},
  ...over,
});
function decide(calls: ChildCall[], others: Call[] = [], opts: ViewOptions = {}, parent: Call | undefined = root) {
  const view = memoryView([root, ...others], opts);
  return decideChildren(parent, { pod: "p1", parent: "r", attempt: 1, calls }, view, NOW);
}
const created = (d: ReturnType<typeof decide>): Call[] =>
  ((d as ChildrenDecision).actions.find((a) => a.type === "create") as Extract<Action, { type: "create" }> | undefined)
    ?.calls ?? [];

describe("decideChildren", () => {
  it("builds the children: owned by the root, labelled, inheriting application and headers", () => {
    const d = decide([child({ args: [{ value: 1 }] }), child({ name: c1, sequence: 1, args: [{ call: c0 }] })]);
    const [a, b] = created(d);
    expect((d as ChildrenDecision).finished).toEqual([]);
    expect(a!.metadata).toMatchObject({
      name: c0,
      namespace: "ns",
      labels: { "trellis.dev/request": "r", "trellis.dev/parent": "r", "trellis.dev/application": "app" },
      ownerReferences: [{ kind: "FunctionCall", name: "r", uid: "uid-r" }],
    });
    expect(a!.spec).toEqual({
      application: "app",
      function: "g",
      parent: "r",
      request: "r",
      sequence: 0,
      args: [{ value: 1 }],
    });
    expect(b!.spec.args).toEqual([{ call: c0 }]); // a sibling of the same batch may be an input
  });

  it("run_later: delaySeconds becomes an absolute startAfter", () => {
    const [a] = created(decide([child({ delaySeconds: 2.5 })]));
    expect(a!.spec.startAfter).toBe(new Date(NOW + 2500).toISOString());
  });

  it("re-attaches to existing children: finished ones answer their outcome, none is created again", () => {
    const done = mkChild(c0, "r", "r", 0, { function: "g" }, { phase: "Succeeded", output: { value: 10 } });
    const runs = mkChild(c1, "r", "r", 1, { function: "g" }, { phase: "Running", pod: "p2", attempts: 1 });
    const d = decide([child(), child({ name: c1, sequence: 1 })], [done, runs]);
    expect(d).toEqual({ actions: [], finished: [{ call: c0, phase: "Succeeded", output: { value: 10 } }] });
  });

  const rejects: {
    name: string;
    calls: ChildCall[];
    others?: Call[];
    opts?: ViewOptions;
    code: string;
    message: string;
  }[] = [
    {
      name: "a name not derived from request, parent and sequence",
      calls: [child({ name: "r-aaaaaaaaaaaaaaaa" })],
      code: "child_name_mismatch",
      message: `body.calls[0].name: must be ${c0}, derived from request r, parent r and sequence 0`,
    },
    {
      name: "a name taken by another call",
      calls: [child({ function: "h" })],
      others: [mkChild(c0, "r", "r", 0, { function: "g" })],
      code: "name_conflict",
      message: `body.calls[0].name: ${c0} exists as a call of g by r, not h by r`,
    },
    {
      name: "an input of another request",
      calls: [child({ args: [{ call: "elsewhere" }] })],
      others: [mkCall("elsewhere")],
      code: "unknown_input",
      message: "body.calls[0].args[0].call: no call named elsewhere in request r",
    },
    {
      name: "an inline value over the limit",
      calls: [child({ kwargs: { x: { value: "y".repeat(200) } } })],
      opts: { inlineValueLimitBytes: 100 },
      code: "value_too_large",
      message:
        "body.calls[0].kwargs.x.value: 202 bytes inline, over the limit of 100; upload it with PUT /blobs and pass {blob}",
    },
    {
      name: "a blob of another namespace",
      calls: [child({ args: [{ blob: "other/r/x" }] })],
      code: "invalid_body",
      message: "body.calls[0].args[0].blob: must be a blob of namespace ns (got other/r/x)",
    },
    {
      name: "map and reduce at once",
      calls: [child({ map: { items: [] }, reduce: { items: [] } })],
      code: "invalid_body",
      message: "body.calls[0]: map and reduce cannot both be set",
    },
    {
      name: "a map with both items and itemsFrom",
      calls: [child({ map: { items: [], itemsFrom: "r" } })],
      code: "invalid_body",
      message: "body.calls[0].map: exactly one of items or itemsFrom must be set",
    },
    {
      name: "a reduce with args",
      calls: [child({ reduce: { items: [] }, args: [{ value: 1 }] })],
      code: "invalid_body",
      message: "body.calls[0]: args and kwargs must be empty when reduce is set",
    },
    {
      name: "a reduce whose initial names an unknown call",
      calls: [child({ reduce: { items: [], initial: { call: "nope" } } })],
      code: "unknown_input",
      message: "body.calls[0].reduce.initial.call: no call named nope in request r",
    },
    {
      name: "a spec over the size limit",
      calls: [child({ map: { items: Array.from({ length: 200 }, (_, i) => ({ value: i })) } })],
      opts: { maxCallSpecBytes: 1024 },
      code: "call_too_large",
      message: "body.calls[0]: the call's spec takes",
    },
  ];
  for (const tc of rejects)
    it(`rejects ${tc.name}`, () => {
      const d = decide(tc.calls, tc.others, tc.opts);
      expect(d).toMatchObject({ rejected: true, code: tc.code });
      expect((d as { message: string }).message).toContain(tc.message);
    });

  it("the first bad child rejects the whole batch: nothing is created", () => {
    const d = decide([child(), child({ name: c1, sequence: 1, args: [{ call: "nope" }] })]);
    expect(d).toMatchObject({ code: "unknown_input", message: expect.stringMatching(/^body.calls\[1\]/) });
  });

  it("only the running attempt of the parent may make children", () => {
    const ended = mkCall("r", {}, { phase: "Succeeded", pod: "p1", attempts: 1 });
    expect(decide([child()], [], {}, ended)).toEqual({
      rejected: true,
      code: "stale_attempt",
      message: "call r: attempt 1 has ended; it can make no more calls",
    });
    const other = mkCall("r", {}, { phase: "Running", pod: "p2", attempts: 1 });
    expect(decide([child()], [], {}, other)).toMatchObject({ code: "not_assigned" });
  });

  it("a parent whose request root is gone", () => {
    const parent = mkChild("c", "r", "r", 0, {}, { phase: "Running", pod: "p1", attempts: 1 });
    const view = memoryView([parent]);
    const d = decideChildren(parent, { pod: "p1", parent: "c", attempt: 1, calls: [] }, view, NOW);
    expect(d).toEqual({
      rejected: true,
      code: "call_not_found",
      message: "request r: its root call does not exist (deleted?)",
    });
  });
});
