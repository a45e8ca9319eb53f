import { describe, expect, it } from "vitest";
import { FAILURE_REASON_NAMES, FAILURE_REASONS, WORKER_FAILURE_REASONS } from "../../../protocol/index.js";
import { ValueFormError, hasBlob, inlineSize, toOperator, toWorker } from "./values.js";
import { childFromSpec, errorForWorker, failureFromWorker, functionTable } from "./translate.js";

describe("value forms", () => {
  it("translates json ↔ value, recursively inside list", () => {
    const worker = { list: [{ json: { a: 1 } }, { pickle: "gASV" }, { list: [{ json: null }] }] };
    const op = { list: [{ value: { a: 1 } }, { pickle: "gASV" }, { list: [{ value: null }] }] };
    expect(toOperator(worker)).toEqual(op);
    expect(toWorker(op)).toEqual(worker);
  });

  it("passes raw bytes with their MIME type through both ways, also inside a list", () => {
    const raw = { raw: { contentType: "text/plain; charset=utf-8", data: "aGk=" } };
    expect(toOperator(raw)).toEqual(raw);
    expect(toWorker(raw)).toEqual(raw);
    expect(toOperator({ list: [raw, { json: 1 }] })).toEqual({ list: [raw, { value: 1 }] });
    expect(toWorker({ list: [raw] })).toEqual({ list: [raw] });
    // Only the two fields travel.
    expect(toOperator({ raw: { ...raw.raw, extra: 1 } })).toEqual(raw);
    expect(() => toWorker({ raw: { contentType: "", data: "" } }, "args[0]")).toThrow(
      /args\[0\].raw.contentType: must be a non-empty string/,
    );
    expect(() => toOperator({ raw: { contentType: "a/b" } }, "output")).toThrow(/output.raw.data: must be a string/);
    expect(() => toOperator({ raw: "aGk=" }, "output")).toThrow(/output.raw: must be an object/);
  });

  it("keeps call and blob references towards the operator", () => {
    expect(toOperator({ call: "r1-abc" })).toEqual({ call: "r1-abc" });
    expect(toOperator({ blob: "ns/r1/x" })).toEqual({ blob: "ns/r1/x" });
  });

  it("never hands the worker a call or blob reference", () => {
    expect(() => toWorker({ call: "r1" }, "args[0]")).toThrow(
      /args\[0\]: a \{call\} value cannot be sent to the worker/,
    );
    expect(() => toWorker({ list: [{ blob: "b" }] })).toThrow(/value.list\[0\]: a \{blob\}/);
  });

  it("names the place and the rule for a bad form", () => {
    expect(() => toOperator({ json: 1, pickle: "x" }, "output")).toThrow(ValueFormError);
    expect(() => toOperator({ json: 1, pickle: "x" }, "output")).toThrow(
      /output: exactly one of json, pickle, list, raw, call, blob/,
    );
    expect(() => toOperator(42, "kwargs.x")).toThrow(/kwargs.x: must be an object/);
    expect(() => toOperator({ list: {} }, "o")).toThrow(/o.list: must be an array/);
    expect(() => toOperator({ pickle: 3 }, "o")).toThrow(/o.pickle: must be a string/);
  });

  it("finds blobs anywhere in a value and measures inline size", () => {
    expect(hasBlob({ list: [{ value: 1 }, { list: [{ blob: "x" }] }] })).toBe(true);
    expect(hasBlob({ value: { blob: "not a ref, just data" } })).toBe(false);
    expect(inlineSize({ value: "é" })).toBe(Buffer.byteLength('{"value":"é"}'));
  });
});

describe("translation", () => {
  it("maps worker error reasons to failure kinds", () => {
    const base = { type: "ValueError", message: "bad 3", traceback: "Traceback ...\nValueError: bad 3" };
    expect(failureFromWorker(2, { ...base, reason: "function_error", retryable: true })).toEqual({
      attempt: 2,
      error: { type: "ValueError", message: "bad 3", traceback: base.traceback },
      kind: "user",
      retryable: true,
    });
    expect(failureFromWorker(1, { ...base, reason: "request_error", request_error: true })).toMatchObject({
      kind: "request_error",
      retryable: false,
    });
    expect(failureFromWorker(1, { ...base, reason: "function_timeout" })).toMatchObject({
      kind: "timeout",
      retryable: true,
    });
    expect(failureFromWorker(1, { ...base, reason: "worker_shutdown" })).toMatchObject({ kind: "infrastructure" });
    expect(failureFromWorker(1, { ...base, reason: "unknown_function", retryable: true })).toMatchObject({
      kind: "user",
      retryable: false,
    });
  });

  it.each(WORKER_FAILURE_REASONS.map((r) => [r]))("reports a %s failure as the shared table says", (reason) => {
    const entry = FAILURE_REASONS[reason];
    for (const retryable of [true, false]) {
      const f = failureFromWorker(1, { type: "E", message: "m", reason, retryable });
      expect(f.kind).toBe(entry.kind);
      expect(f.retryable).toBe(entry.retry === "never" ? false : retryable);
    }
  });

  const relayed = FAILURE_REASON_NAMES.filter((r) => !(WORKER_FAILURE_REASONS as readonly string[]).includes(r));
  it.each(relayed.map((r) => [r]))("reports a relayed child's %s failure as final, of its kind", (reason) => {
    const f = failureFromWorker(1, { type: "FunctionError", message: "m", reason, retryable: true });
    expect(f.kind).toBe(FAILURE_REASONS[reason].kind ?? "user");
    expect(f.retryable).toBe(false);
  });

  it("clips long messages and keeps the end of long tracebacks", () => {
    const f = failureFromWorker(1, { type: "E", message: "m".repeat(40_000), traceback: "a".repeat(70_000) + "LAST" });
    expect(f.error.message.length).toBe(32768);
    expect(f.error.traceback!.length).toBe(65536);
    expect(f.error.traceback!.endsWith("LAST")).toBe(true);
  });

  it("turns operator outcomes into worker errors", () => {
    const e = errorForWorker(
      {
        call: "r1-x",
        phase: "Failed",
        error: { type: "ValueError", message: "bad", traceback: "tb", reason: "function_error" },
      },
      "boom",
    );
    expect(e).toMatchObject({
      type: "ValueError",
      message: "bad",
      traceback: "tb",
      function: "boom",
      call: "r1-x",
      request_error: false,
    });
    expect(
      errorForWorker(
        { call: "r1-x", phase: "Failed", error: { type: "RequestError", message: "no", reason: "request_error" } },
        undefined,
      ).request_error,
    ).toBe(true);
    expect(errorForWorker({ call: "r1-y", phase: "Cancelled" }, undefined)).toMatchObject({
      type: "CallCancelled",
      call: "r1-y",
    });
  });

  it("builds the register table from hello, leaving out names the operator cannot address", () => {
    const { functions, skipped } = functionTable([
      {
        name: "pair_sum",
        async: false,
        application: true,
        timeout: 30.0,
        retries: null,
        application_retries: { max_retries: 2, initial_delay: 1.0, max_delay: 60.0, delay_multiplier: 2.0 },
        min_containers: 0,
        max_containers: 3,
        max_concurrency: 4,
      },
      {
        name: "double",
        async: true,
        application: false,
        retries: { max_retries: 1, initial_delay: 0.5, max_delay: 5, delay_multiplier: 3 },
      },
      { name: "Model.predict", async: false, application: false },
      // Not a valid entry (worker-parse.ts leaves it out of hello), but never registered either.
      { name: "not a name", async: false, application: false },
    ]);
    expect(functions).toEqual([
      {
        name: "pair_sum",
        async: false,
        application: true,
        timeoutSeconds: 30,
        maxConcurrency: 4,
        minContainers: 0,
        maxContainers: 3,
        retries: { maxRetries: 2, initialDelaySeconds: 1, maxDelaySeconds: 60, delayMultiplier: 2 },
      },
      {
        name: "double",
        async: true,
        application: false,
        retries: { maxRetries: 1, initialDelaySeconds: 0.5, maxDelaySeconds: 5, delayMultiplier: 3 },
      },
      { name: "Model.predict", async: false, application: false },
    ]);
    expect(skipped).toEqual(["not a name"]);
  });

  it("turns call specs into child calls", async () => {
    const convert = async (form: unknown) => toOperator(form);
    expect(
      await childFromSpec(
        {
          id: "r1-a",
          kind: "call",
          function: "add",
          args: [{ call: "r1-b" }, { json: 2 }],
          kwargs: { scale: { json: 3 } },
          delay: 1.5,
        },
        4,
        convert,
      ),
    ).toEqual({
      name: "r1-a",
      sequence: 4,
      function: "add",
      delaySeconds: 1.5,
      args: [{ call: "r1-b" }, { value: 2 }],
      kwargs: { scale: { value: 3 } },
    });
    expect(
      await childFromSpec(
        { id: "r1-m", kind: "map", function: "double", items: [{ json: 1 }, { call: "r1-c" }] },
        0,
        convert,
      ),
    ).toEqual({
      name: "r1-m",
      sequence: 0,
      function: "double",
      map: { items: [{ value: 1 }, { call: "r1-c" }] },
    });
    expect(
      await childFromSpec(
        { id: "r1-r", kind: "reduce", function: "add", items: { call: "r1-m" }, initial: { json: 0 } },
        1,
        convert,
      ),
    ).toEqual({
      name: "r1-r",
      sequence: 1,
      function: "add",
      reduce: { itemsFrom: "r1-m", initial: { value: 0 } },
    });
  });
});
