import { describe, expect, it } from "vitest";
import type { Call } from "./calls.js";
import {
  type AccessView,
  decideBlobRead,
  decideBlobRequest,
  decideStateRead,
  decideStateWrite,
  decideWait,
} from "./decide-access.js";
import { memoryView, mkCall, mkChild } from "./testing.js";

const running = (pod: string): Call["status"] => ({ phase: "Running", pod, attempts: 1 });
const calls = [
  mkCall("r", {}, running("p1")),
  mkChild("c", "r", "r", 0, {}, running("p1")),
  mkCall("r2", {}, running("p2")),
  mkCall("r3"),
];
const onPod: Record<string, string[]> = { p1: ["r", "c"], p2: ["r2"] };
const view: AccessView = { ...memoryView(calls, { maxCallSpecBytes: 1024 }), runningOn: (p) => onPod[p] ?? [] };

describe("access of a pod to its requests", () => {
  it("wait: calls of one request the pod runs a call of", () => {
    expect(decideWait(view, "p1", ["c", "r"])).toBeUndefined();
    expect(decideWait(view, "p1", ["zz"])).toMatchObject({
      code: "call_not_found",
      message: expect.stringMatching(/^body\.calls\[0\]: no FunctionCall named zz /),
    });
    expect(decideWait(view, "p1", ["r", "r2"])).toMatchObject({
      code: "not_in_request",
      message: "body.calls[1]: r2 belongs to request r2, not r; wait on one request at a time",
    });
    expect(decideWait(view, "p1", ["r3"])).toMatchObject({
      code: "not_in_request",
      message: "body.calls: pod p1 runs no call of request r3",
    });
  });

  it("wait: a child created but not yet in the view counts as of its request; others are not found", () => {
    const created: Record<string, string> = { fresh: "r", elsewhere: "r2" };
    const lagging: AccessView = { ...view, announced: (n) => created[n] };
    expect(decideWait(lagging, "p1", ["fresh", "c"])).toBeUndefined();
    expect(decideWait(lagging, "p1", ["elsewhere"])).toMatchObject({
      code: "not_in_request",
      message: "body.calls: pod p1 runs no call of request r2",
    });
    expect(decideWait(lagging, "p1", ["c", "elsewhere"])).toMatchObject({ code: "not_in_request" });
    expect(decideWait(lagging, "p1", ["fresh", "zz"])).toMatchObject({
      code: "call_not_found",
      message: expect.stringMatching(/^body\.calls\[1\]: no FunctionCall named zz/),
    });
  });

  it("after a failover: a pod not heard from yet runs the requests its persisted Running calls name", () => {
    const fresh: AccessView = {
      ...memoryView(calls, { maxCallSpecBytes: 1024 }),
      runningOn: () => [],
      callsOfRequest: (r) =>
        calls.filter((c) => (c.spec.request ?? c.metadata.name) === r).map((c) => c.metadata.name!),
    };
    expect(decideWait(fresh, "p1", ["c"])).toBeUndefined();
    expect(decideStateRead(fresh, "p2", "r2", "k")).toEqual(expect.any(String));
    expect(decideWait(fresh, "p2", ["c"])).toMatchObject({ code: "not_in_request" });
    expect(decideWait({ ...fresh, callsOfRequest: undefined }, "p1", ["c"])).toMatchObject({ code: "not_in_request" });
  });

  it("request state: filed under the request; the value is bounded and namespaced", () => {
    expect(decideStateRead(view, "p1", "r", "k")).toBe("ns/r/state/k");
    expect(decideStateRead(view, "p2", "r", "k")).toMatchObject({ code: "not_in_request" });
    expect(decideStateWrite(view, "p1", "r", "k", { value: { value: 1 } })).toBe("ns/r/state/k");
    expect(decideStateWrite(view, "p1", "r", "k", { value: { value: "x".repeat(2000) } })).toMatchObject({
      code: "value_too_large",
    });
    expect(decideStateWrite(view, "p1", "r", "k", { value: { blob: "other/r/x" } })).toMatchObject({
      code: "invalid_body",
      message: "body.value.blob: must be a blob of namespace ns",
    });
  });

  it("blob uploads: the request of the named call, or of the pod's only request", () => {
    expect(decideBlobRequest(view, "p1", "c")).toBe("r");
    expect(decideBlobRequest(view, "p2", undefined)).toBe("r2");
    expect(decideBlobRequest(view, "p1", undefined)).toBe("r"); // two calls, one request
    expect(decideBlobRequest(view, "p9", undefined)).toMatchObject({ code: "invalid_body" });
    expect(decideBlobRequest(view, "p2", "c")).toMatchObject({ code: "not_assigned" });
  });

  it("blob reads: a valid ref of the namespace, of a request the pod works on", () => {
    expect(decideBlobRead(view, "p1", "ns/r/abc")).toBe("ns/r/abc");
    expect(decideBlobRead(view, "p1", "ns/../x")).toMatchObject({ code: "invalid_body" });
    expect(decideBlobRead(view, "p1", "other/r/x")).toMatchObject({ code: "forbidden_blob" });
    expect(decideBlobRead(view, "p1", "ns/r2/x")).toMatchObject({
      code: "forbidden_blob",
      message: "path: blob ns/r2/x belongs to request r2, which pod p1 runs no call of",
    });
  });
});
