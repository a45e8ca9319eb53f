import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  CALL_FAILURE_REASONS,
  FAILURE_KINDS,
  FAILURE_REASONS,
  LABEL,
  callReasonOfKind,
  failureReason,
  functionCall,
  functionLabelValue,
  newRequest,
  requestName,
} from "./index.js";
import { CONSTANTS_PATH, constants } from "./fixtures/generate-constants.js";

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

describe("constants.json", () => {
  it("matches the TypeScript constants (run `npm run protocol:fixtures` after a change, then fix the Python side)", () => {
    const onDisk = JSON.parse(readFileSync(CONSTANTS_PATH, "utf8"));
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(constants())));
  });
});

describe("failure reasons", () => {
  it("maps every reason to a call reason the CRD accepts and a known kind", () => {
    for (const [name, r] of Object.entries(FAILURE_REASONS)) {
      expect(CALL_FAILURE_REASONS, name).toContain(r.callReason);
      if (r.kind !== null) expect(FAILURE_KINDS, name).toContain(r.kind);
    }
  });

  it("never retries a RequestError and re-runs infrastructure loss without the user's budget", () => {
    expect(failureReason("request_error").retry).toBe("never");
    expect(failureReason("worker_shutdown")).toMatchObject({ kind: "infrastructure", retry: "infrastructure" });
    expect(failureReason("unknown_function").retry).toBe("never");
  });

  it("treats a missing or unknown reason as a function error", () => {
    expect(failureReason(undefined).name).toBe("function_error");
    expect(failureReason("no_such_reason").name).toBe("function_error");
  });

  it("gives every runtime-API kind a call reason", () => {
    expect(FAILURE_KINDS.map(callReasonOfKind)).toEqual([
      "function_error",
      "request_error",
      "function_timeout",
      "infrastructure",
    ]);
  });
});

describe("newRequest", () => {
  it("builds a root call the FunctionCall schema accepts, with the request labels", () => {
    const c = newRequest({
      namespace: "ns",
      application: "my-app",
      function: "_private_entry",
      args: [{ value: 1 }],
      kwargs: { k: { value: "v" } },
      headers: { "x-a": "b" },
    });
    expect(functionCall.safeParse(c).success).toBe(true);
    const name = c.metadata.name!;
    expect(name).toMatch(/^my-app-[0-9a-f]{12}$/);
    expect(c.metadata.labels).toEqual({
      [LABEL.application]: "my-app",
      [LABEL.request]: name,
      [LABEL.function]: functionLabelValue("_private_entry"),
    });
    for (const v of Object.values(c.metadata.labels!)) expect(v).toMatch(LABEL_VALUE);
    expect(c.spec).toEqual({
      application: "my-app",
      function: "_private_entry",
      args: [{ value: 1 }],
      kwargs: { k: { value: "v" } },
      headers: { "x-a": "b" },
    });
  });

  it("omits empty args and kwargs", () => {
    const c = newRequest({ namespace: "ns", application: "a", function: "f", args: [], kwargs: {} });
    expect(c.spec).toEqual({ application: "a", function: "f" });
  });

  it("names the same request for the same idempotency key, and keeps the key", () => {
    const a = newRequest({ namespace: "ns", application: "a", function: "f", idempotencyKey: "k1" });
    const b = newRequest({ namespace: "ns", application: "a", function: "f", idempotencyKey: "k1" });
    expect(a.metadata.name).toBe(b.metadata.name);
    expect(a.metadata.annotations).toEqual({ "trellis.dev/idempotency-key": "k1" });
    expect(requestName("ns", "a", "k2")).not.toBe(a.metadata.name);
    expect(requestName("other", "a", "k1")).not.toBe(a.metadata.name);
  });
});
