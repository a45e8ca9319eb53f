import { describe, expect, it } from "vitest";
import type { Action } from "./actions.js";
import type { Call } from "./calls.js";
import {
  checkProgress,
  currentAttempt,
  decideFailure,
  decideProgressWrite,
  decideResult,
  decideTail,
} from "./decide-report.js";
import { memoryView, mkCall, mkChild } from "./testing.js";

const NOW = Date.parse("2026-03-01T00:00:00Z");
const running = (attempts = 1, pod = "p1"): Call["status"] => ({ phase: "Running", pod, attempts });
const statusOf = (a: Action[] | { rejected: true }) =>
  (a as Action[]).find((x) => x.type === "status") as Extract<Action, { type: "status" }> | undefined;

describe("currentAttempt", () => {
  const report = { pod: "p1", name: "r", attempt: 2 };
  const cases: { name: string; status?: Call["status"]; late?: boolean; want: string }[] = [
    { name: "the running attempt on this pod", status: running(2), want: "call" },
    { name: "another pod's call", status: running(2, "p2"), want: "not_assigned" },
    { name: "an older attempt", status: running(3), want: "stale_attempt" },
    {
      name: "a finished attempt (retried report)",
      status: { phase: "Succeeded", pod: "p1", attempts: 2 },
      want: "duplicate",
    },
    { name: "a delegated attempt", status: { phase: "Delegated", pod: "p1", attempts: 2 }, want: "duplicate" },
    {
      name: "lost and re-queued, late success",
      status: { phase: "Queued", pod: "p1", attempts: 2 },
      late: true,
      want: "call",
    },
    {
      name: "lost and re-queued, late failure",
      status: { phase: "Queued", pod: "p1", attempts: 2 },
      want: "stale_attempt",
    },
    {
      name: "waiting for a retry: even a success is stale",
      status: { phase: "Queued", pod: "p1", attempts: 2, retryAfter: "2026-03-01T00:01:00Z" },
      late: true,
      want: "stale_attempt",
    },
  ];
  for (const tc of cases)
    it(tc.name, () => {
      const got = currentAttempt(mkCall("r", {}, tc.status), report, tc.late);
      const kind = got === "duplicate" ? "duplicate" : "rejected" in got ? got.code : "call";
      expect(kind).toBe(tc.want);
    });
  it("an unknown call", () => {
    expect(currentAttempt(undefined, report)).toMatchObject({
      code: "call_not_found",
      message: /call r: no FunctionCall/,
    });
  });
  it("the stale message names the attempts and the phase", () => {
    expect(currentAttempt(mkCall("r", {}, running(3)), report)).toMatchObject({
      message: "call r: attempt 2 is not the running one (current attempt 3, phase Running); the report is ignored",
    });
  });
});

describe("decideResult", () => {
  const r = mkCall("r", {}, running());
  const view = memoryView([r]);
  it("Succeeded with the output, out of the ready queue", () => {
    const a = decideResult(r, { pod: "p1", name: "r", attempt: 1, output: { value: 42 } }, view, NOW);
    expect(a).toEqual([
      { type: "dequeue" },
      {
        type: "status",
        patch: { phase: "Succeeded", completionTime: new Date(NOW).toISOString(), error: null, retryAfter: null },
        output: { value: 42 },
      },
    ]);
  });
  it("a duplicate report is acknowledged with nothing to do", () => {
    const done = mkCall("r", {}, { phase: "Succeeded", pod: "p1", attempts: 1, output: { value: 1 } });
    expect(decideResult(done, { pod: "p1", name: "r", attempt: 1, output: { value: 2 } }, view, NOW)).toEqual([]);
  });
  it("a late success of an attempt given up as lost is kept", () => {
    const requeued = mkCall("r", {}, { phase: "Queued", pod: "p1", attempts: 1, infrastructureFailures: 1 });
    const a = decideResult(requeued, { pod: "p1", name: "r", attempt: 1, output: { value: "late" } }, view, NOW);
    expect(statusOf(a)?.patch.phase).toBe("Succeeded");
  });
  it("an output naming a blob of another namespace is refused before anything else", () => {
    expect(
      decideResult(undefined, { pod: "p1", name: "r", attempt: 1, output: { blob: "other/r/x" } }, view, NOW),
    ).toEqual({
      rejected: true,
      code: "invalid_body",
      message: "body.output.blob: must be a blob of namespace ns (got other/r/x)",
    });
  });
  it("a stale attempt is rejected", () => {
    expect(decideResult(r, { pod: "p1", name: "r", attempt: 7, output: { value: 1 } }, view, NOW)).toMatchObject({
      code: "stale_attempt",
    });
  });
});

describe("decideFailure", () => {
  const retries = { maxRetries: 1, initialDelaySeconds: 2, maxDelaySeconds: 60, delayMultiplier: 2 };
  const app = { spec: { entrypoint: "f", image: "i", functions: [{ name: "f", retries }] } };
  const report = (kind: "user" | "request_error" | "timeout" | "infrastructure", retryable = true) => ({
    pod: "p1",
    name: "r",
    attempt: 1,
    kind,
    retryable,
    error: { type: "ValueError", message: "no" },
  });
  it("a user error within the policy: Queued with retryAfter, back on the queue then", () => {
    const r = mkCall("r", {}, running());
    const a = decideFailure(r, report("user"), memoryView([r], { app }), NOW) as Action[];
    expect(a.map((x) => x.type)).toEqual(["status", "enqueue", "event"]);
    expect(statusOf(a)?.patch).toMatchObject({ phase: "Queued", retryAfter: new Date(NOW + 2000).toISOString() });
    expect(a[1]).toEqual({ type: "enqueue", notBefore: NOW + 2000 });
  });
  it("not retryable: Failed whatever the policy", () => {
    const r = mkCall("r", {}, running());
    const a = decideFailure(r, report("user", false), memoryView([r], { app }), NOW);
    expect(statusOf(a)?.patch).toMatchObject({ phase: "Failed", error: { reason: "function_error" } });
  });
  it("infrastructure: re-queued without spending retries", () => {
    const r = mkCall("r", {}, running());
    const a = decideFailure(r, report("infrastructure"), memoryView([r]), NOW);
    expect(statusOf(a)?.patch).toEqual({ phase: "Queued", infrastructureFailures: 1, retryAfter: null });
  });
  it("a failure of an attempt given up as lost is stale (only a success is kept late)", () => {
    const r = mkCall("r", {}, { phase: "Queued", pod: "p1", attempts: 1 });
    expect(decideFailure(r, report("user"), memoryView([r]), NOW)).toMatchObject({ code: "stale_attempt" });
  });
  it("a duplicate is acknowledged with nothing to do", () => {
    const r = mkCall("r", {}, { phase: "Failed", pod: "p1", attempts: 1 });
    expect(decideFailure(r, report("user"), memoryView([r]), NOW)).toEqual([]);
  });
});

describe("decideTail", () => {
  const r = mkCall("r", {}, running());
  const t = mkChild("t", "r", "r", 0);
  const other = mkCall("x");
  const view = memoryView([r, t, other]);
  it("Delegated to a call of the same request", () => {
    expect(decideTail(r, { pod: "p1", name: "r", attempt: 1, tailCall: "t" }, view)).toEqual([
      { type: "dequeue" },
      { type: "status", patch: { phase: "Delegated", tailCall: "t" } },
    ]);
  });
  for (const tail of ["nowhere", "x", "r"])
    it(`refuses ${tail} (missing, another request, itself)`, () => {
      expect(decideTail(r, { pod: "p1", name: "r", attempt: 1, tailCall: tail }, view)).toEqual({
        rejected: true,
        code: "unknown_tail_call",
        message: `body.tailCall: ${tail} is not a call of request r (create it with /children first)`,
      });
    });
});

describe("progress", () => {
  it("any call assigned to the pod may report; it is written only while Running", () => {
    const r = mkCall("r", {}, running());
    expect(checkProgress(r, "p1", "r")).toBeUndefined();
    expect(checkProgress(r, "p2", "r")).toMatchObject({ code: "not_assigned" });
    expect(checkProgress(undefined, "p1", "r")).toMatchObject({ code: "call_not_found" });
    const p = { current: 1, total: 2 };
    expect(decideProgressWrite(r, p)).toEqual([{ type: "status", patch: { progress: p } }]);
    expect(decideProgressWrite(mkCall("r", {}, { phase: "Succeeded", pod: "p1", attempts: 1 }), p)).toEqual([]);
  });
});
