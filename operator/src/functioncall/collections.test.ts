import { describe, expect, it } from "vitest";
import type { Action } from "./actions.js";
import { decideAttemptFailure } from "./attempts.js";
import type { Call } from "./calls.js";
import { decideCall } from "./decide-call.js";
import { childName } from "../../../protocol/index.js";
import { backoffMs, resolvePolicy } from "./policy.js";
import { memoryView, mkCall, mkChild, type ViewOptions } from "./testing.js";

const NOW = 1_000_000;
const root = mkCall("r", {}, { phase: "Running", pod: "p", attempts: 1 });
const decide = (call: Call, others: Call[] = [], opts: ViewOptions = {}) =>
  decideCall(call, memoryView([root, call, ...others], opts), NOW);
const created = (a: Action[]) =>
  (a.find((x) => x.type === "create") as Extract<Action, { type: "create" }> | undefined)?.calls ?? [];
const status = (a: Action[]) => a.find((x) => x.type === "status") as Extract<Action, { type: "status" }> | undefined;
const item = (m: string, i: number, status?: Call["status"]) =>
  mkChild(childName("r", m, i), m, "r", i, { args: [{ value: i }] }, status);
const ok = (v: unknown): Call["status"] => ({ phase: "Succeeded", output: { value: v } });

describe("map", () => {
  const m = mkChild("m", "r", "r", 0, { function: "g", map: { items: [{ value: 0 }, { call: "fut" }, { value: 2 }] } });

  it("creates one child per item, named from the map call, owned by the root, labelled", () => {
    const a = decide(m);
    const kids = created(a);
    expect(kids.map((k) => k.metadata.name)).toEqual([0, 1, 2].map((i) => childName("r", "m", i)));
    expect(kids[1]!.spec).toMatchObject({
      function: "g",
      args: [{ call: "fut" }],
      parent: "m",
      request: "r",
      sequence: 1,
      application: "app",
    });
    expect(kids[0]!.metadata.ownerReferences).toEqual([
      { apiVersion: "trellis.dev/v1alpha1", kind: "FunctionCall", name: "r", uid: "uid-r" },
    ]);
    expect(kids[0]!.metadata.labels).toEqual({
      "trellis.dev/application": "app",
      "trellis.dev/request": "r",
      "trellis.dev/function": "g",
      "trellis.dev/parent": "m",
    });
    expect(a.at(-1)).toEqual({ type: "markWaiting", phase: "Running" });
  });
  it("a request that is itself a map (kubectl) expands under itself", () => {
    const rm = mkCall("rm", { function: "g", map: { items: [{ value: 1 }] } });
    const kids = created(decideCall(rm, memoryView([rm]), NOW));
    expect(kids.map((k) => [k.metadata.name, k.spec.request, k.metadata.ownerReferences![0]!.name])).toEqual([
      [childName("rm", "rm", 0), "rm", "rm"],
    ]);
  });
  it("creates only the missing children", () => {
    expect(created(decide(m, [item("m", 0), item("m", 2)])).map((k) => k.spec.sequence)).toEqual([1]);
  });
  it("waits while items run", () => {
    expect(decide(m, [item("m", 0, ok(0)), item("m", 1), item("m", 2, ok(2))])).toEqual([
      { type: "markWaiting", phase: "Running" },
    ]);
  });
  it("output: the list of item outputs in input order", () => {
    const a = decide(m, [item("m", 2, ok("c")), item("m", 0, ok("a")), item("m", 1, ok("b"))]);
    expect(status(a)).toMatchObject({ patch: { phase: "Succeeded" }, output: { value: ["a", "b", "c"] } });
    // Settled from the outputs alone: no child is listed (a 100,000-item map decoded each item).
    const kids = [item("m", 2, ok("c")), item("m", 0, ok("a")), item("m", 1, ok("b"))];
    const view = memoryView([root, m, ...kids]);
    view.children = () => {
      throw new Error("children listed");
    };
    expect(status(decideCall(m, view, NOW))).toMatchObject({ output: { value: ["a", "b", "c"] } });
  });
  it("non-JSON items: a list document (stored as a blob by apply)", () => {
    const a = decide(m, [
      item("m", 0, ok(1)),
      item("m", 1, { phase: "Succeeded", output: { pickle: "gAQ=" } }),
      item("m", 2, ok(3)),
    ]);
    expect(status(a)!.output).toEqual({ list: [{ value: 1 }, { pickle: "gAQ=" }, { value: 3 }] });
  });
  it("the first failure fails the map, the item as cause", () => {
    const a = decide(m, [
      item("m", 0, ok(1)),
      item("m", 1, { phase: "Failed", error: { type: "E", message: "x" } }),
      item("m", 2),
    ]);
    expect(status(a)!.patch).toMatchObject({
      phase: "Failed",
      error: { reason: "input_failed", cause: childName("r", "m", 1) },
    });
  });
  it("an empty map succeeds with an empty list", () => {
    const e = mkChild("e", "r", "r", 0, { map: { items: [] } });
    expect(status(decide(e))).toMatchObject({ patch: { phase: "Succeeded" }, output: { value: [] } });
  });
  describe("itemsFrom", () => {
    const mf = mkChild("mf", "r", "r", 1, { map: { itemsFrom: "src" } });
    it("waits for the source", () =>
      expect(decide(mf, [mkChild("src", "r", "r", 0)])).toEqual([{ type: "markWaiting", phase: "Blocked" }]));
    it("expands a JSON list output", () =>
      expect(created(decide(mf, [mkChild("src", "r", "r", 0, {}, ok([5, 6]))])).map((k) => k.spec.args)).toEqual([
        [{ value: 5 }],
        [{ value: 6 }],
      ]));
    it("expands a str output by code point, as Python iterates it", () =>
      expect(created(decide(mf, [mkChild("src", "r", "r", 0, {}, ok("aé😀"))])).map((k) => k.spec.args)).toEqual([
        [{ value: "a" }],
        [{ value: "é" }],
        [{ value: "😀" }],
      ]));
    it("expands the items of a list output", () =>
      expect(
        created(
          decide(mf, [
            mkChild(
              "src",
              "r",
              "r",
              0,
              {},
              { phase: "Succeeded", output: { list: [{ pickle: "AA==" }, { value: 2 }] } },
            ),
          ]),
        ).map((k) => k.spec.args),
      ).toEqual([[{ pickle: "AA==" }], [{ value: 2 }]]));
    it("asks to load a blob list", () =>
      expect(decide(mf, [mkChild("src", "r", "r", 0, {}, { phase: "Succeeded", output: { blob: "ns/r/b" } })])).toEqual(
        [{ type: "loadItems", from: "src" }],
      ));
    it("a pickled output (e.g. a tuple) cannot be split", () =>
      expect(
        status(decide(mf, [mkChild("src", "r", "r", 0, {}, { phase: "Succeeded", output: { pickle: "AA==" } })]))!
          .patch,
      ).toMatchObject({
        phase: "Failed",
        error: { type: "SDKUsageError" },
      }));
    it("a non-list output is a usage error", () =>
      expect(status(decide(mf, [mkChild("src", "r", "r", 0, {}, ok(1))]))!.patch).toMatchObject({
        phase: "Failed",
        error: { type: "SDKUsageError", reason: "invalid_call" },
      }));
    it("a failed source fails the map", () =>
      expect(status(decide(mf, [mkChild("src", "r", "r", 0, {}, { phase: "Failed" })]))!.patch).toMatchObject({
        phase: "Failed",
        error: { reason: "input_failed", cause: "src" },
      }));
  });
});

describe("reduce", () => {
  const red = (items: Call["spec"]["args"], initial?: { value?: unknown; call?: string }) =>
    mkChild("rd", "r", "r", 0, { function: "add", reduce: { items, ...(initial ? { initial } : {}) } });
  const step = (k: number, status?: Call["status"]) => mkChild(childName("r", "rd", k), "rd", "r", k, {}, status);

  it("a left-fold chain: each step reads the previous step", () => {
    const kids = created(decide(red([{ value: 1 }, { value: 2 }, { value: 3 }])));
    expect(kids.map((k) => k.spec.args)).toEqual([
      [{ value: 1 }, { value: 2 }],
      [{ call: childName("r", "rd", 0) }, { value: 3 }],
    ]);
  });
  it("with an initial value every item is a step", () => {
    const kids = created(decide(red([{ value: 1 }, { value: 2 }], { value: 0 })));
    expect(kids.map((k) => k.spec.args)).toEqual([
      [{ value: 0 }, { value: 1 }],
      [{ call: childName("r", "rd", 0) }, { value: 2 }],
    ]);
  });
  it("output: the last step's output", () => {
    const a = decide(red([{ value: 1 }, { value: 2 }, { value: 3 }]), [step(0, ok(3)), step(1, ok(6))]);
    expect(status(a)).toMatchObject({ patch: { phase: "Succeeded" }, output: { value: 6 } });
  });
  it("a failed step fails the reduce", () => {
    const a = decide(red([{ value: 1 }, { value: 2 }, { value: 3 }]), [
      step(0, { phase: "Failed", error: { type: "E", message: "m" } }),
      step(1),
    ]);
    expect(status(a)!.patch).toMatchObject({
      phase: "Failed",
      error: { reason: "input_failed", cause: childName("r", "rd", 0) },
    });
  });
  it("empty without initial: SDKUsageError", () => {
    const a = decide(red([]));
    expect(status(a)!.patch).toMatchObject({
      phase: "Failed",
      error: { type: "SDKUsageError", reason: "invalid_call" },
    });
    expect((status(a)!.patch.error as { message: string }).message).toMatch(/empty list and no initial value/);
  });
  it("empty with initial: the initial value", () =>
    expect(status(decide(red([], { value: 7 })))!.output).toEqual({ value: 7 }));
  it("one item without initial: that item, no call", () => {
    const a = decide(red([{ value: 9 }]));
    expect(created(a)).toEqual([]);
    expect(status(a)!.output).toEqual({ value: 9 });
  });
  it("one future item: its output once Succeeded", () => {
    expect(decide(red([{ call: "fu" }]), [mkChild("fu", "r", "r", 5)])).toEqual([
      { type: "markWaiting", phase: "Blocked" },
    ]);
    expect(status(decide(red([{ call: "fu" }]), [mkChild("fu", "r", "r", 5, {}, ok(4))]))!.output).toEqual({
      value: 4,
    });
  });
});

describe("attempt failures and policy", () => {
  const app = {
    spec: {
      entrypoint: "f",
      defaults: {
        timeoutSeconds: 50,
        retries: { maxRetries: 1, initialDelaySeconds: 1, maxDelaySeconds: 60, delayMultiplier: 2 },
      },
      functions: [
        { name: "f", retries: { maxRetries: 3, initialDelaySeconds: 1, maxDelaySeconds: 5, delayMultiplier: 3 } },
      ],
    },
  };
  it("precedence: call spec > function > defaults > decorator > operator", () => {
    const discovered = {
      timeoutSeconds: 7,
      retries: { maxRetries: 9, initialDelaySeconds: 1, maxDelaySeconds: 1, delayMultiplier: 1 },
    };
    expect(resolvePolicy(mkCall("a"), app, discovered, 300)).toMatchObject({
      timeoutSeconds: 50,
      retries: { maxRetries: 3 },
    });
    expect(
      resolvePolicy(
        mkCall("a", {
          timeoutSeconds: 3,
          retries: { maxRetries: 0, initialDelaySeconds: 1, maxDelaySeconds: 1, delayMultiplier: 1 },
        }),
        app,
        discovered,
        300,
      ),
    ).toMatchObject({ timeoutSeconds: 3, retries: { maxRetries: 0 } });
    expect(resolvePolicy(mkCall("a", { function: "g" }), { spec: { entrypoint: "f" } }, discovered, 300)).toMatchObject(
      { timeoutSeconds: 7, retries: { maxRetries: 9 } },
    );
    expect(resolvePolicy(mkCall("a"), undefined, undefined, 300)).toMatchObject({
      timeoutSeconds: 300,
      retries: { maxRetries: 0 },
    });
  });
  it("exponential backoff bounded by maxDelay", () => {
    const p = app.spec.functions[0]!.retries;
    expect([1, 2, 3].map((n) => backoffMs(p, n))).toEqual([1000, 3000, 5000]);
  });
  const policy = resolvePolicy(mkCall("a"), app, undefined, 300);
  const err = { type: "ValueError", message: "bad", traceback: "tb" };
  const after = (attempts: number, infra = 0) =>
    mkCall("a", {}, { phase: "Running", pod: "p", attempts, infrastructureFailures: infra });
  const cases: {
    name: string;
    call: Call;
    kind: "user" | "request_error" | "timeout" | "infrastructure";
    phase: string;
    extra?: object;
  }[] = [
    {
      name: "user error, retries left: Queued with retryAfter",
      call: after(1),
      kind: "user",
      phase: "Queued",
      extra: { retryAfter: new Date(NOW + 1000).toISOString() },
    },
    {
      name: "third failure: 3 s backoff",
      call: after(2),
      kind: "user",
      phase: "Queued",
      extra: { retryAfter: new Date(NOW + 3000).toISOString() },
    },
    {
      name: "retries spent: Failed function_error",
      call: after(4),
      kind: "user",
      phase: "Failed",
      extra: { error: { type: "ValueError", message: "bad", traceback: "tb", reason: "function_error" } },
    },
    { name: "infrastructure attempts do not spend user retries", call: after(5, 2), kind: "user", phase: "Queued" },
    {
      name: "RequestError is never retried",
      call: after(1),
      kind: "request_error",
      phase: "Failed",
      extra: { error: { type: "RequestError", reason: "request_error" } },
    },
    { name: "timeouts are retried like errors", call: after(1), kind: "timeout", phase: "Queued" },
    {
      name: "infrastructure loss re-runs",
      call: after(1),
      kind: "infrastructure",
      phase: "Queued",
      extra: { infrastructureFailures: 1 },
    },
    {
      name: "infrastructure loss beyond the bound fails",
      call: after(3, 2),
      kind: "infrastructure",
      phase: "Failed",
      extra: { error: { reason: "infrastructure" } },
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const a = decideAttemptFailure(tc.call, policy, tc.kind, err, NOW, 2);
      expect(status(a)!.patch).toMatchObject({ phase: tc.phase, ...(tc.extra ?? {}) });
      expect(a.some((x) => x.type === "enqueue")).toBe(tc.phase === "Queued");
      expect(a.some((x) => x.type === "event")).toBe(true);
    });
  }
});
