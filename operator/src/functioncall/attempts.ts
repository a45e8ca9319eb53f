// Pure decisions on the end of an attempt: a result, a failure (retry, re-run or fail), a tail
// call, a timeout. Shared by the reconciler (timeouts, lost pods) and the runtime API (reports).
import { type CallError, type FailureKind, type ValueRef, callReasonOfKind } from "../../../protocol/index.js";
import type { Action } from "./actions.js";
import { type Call, isoTime, nameOf } from "./calls.js";
import { type CallPolicy, backoffMs } from "./policy.js";

export interface AttemptError {
  type: string;
  message: string;
  traceback?: string;
}

export function succeed(output: ValueRef, now: number): Action {
  return {
    type: "status",
    patch: { phase: "Succeeded", completionTime: isoTime(now), error: null, retryAfter: null },
    output,
  };
}

/** The CRD's bounds on error text (a composed message must not make the write invalid). */
const MAX_MESSAGE = 32768;
const MAX_TRACEBACK = 65536;

export function fail(error: CallError, now: number): Action {
  const e: CallError = { ...error, message: clip(error.message, MAX_MESSAGE) };
  if (e.traceback !== undefined) e.traceback = clip(e.traceback, MAX_TRACEBACK);
  return { type: "status", patch: { phase: "Failed", error: e, completionTime: isoTime(now), retryAfter: null } };
}

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function cancelled(message: string, now: number): Action {
  return {
    type: "status",
    patch: {
      phase: "Cancelled",
      error: { type: "Cancelled", message, reason: "cancelled" },
      completionTime: isoTime(now),
      retryAfter: null,
    },
  };
}

export function delegate(tailCall: string): Action {
  return { type: "status", patch: { phase: "Delegated", tailCall } };
}

/**
 * An attempt failed. Infrastructure loss re-runs it without spending user retries (up to
 * `infrastructureRetries`); RequestError is never retried; user errors and timeouts are retried
 * with exponential backoff while the policy allows.
 */
export function decideAttemptFailure(
  call: Call,
  policy: CallPolicy,
  kind: FailureKind,
  error: AttemptError,
  now: number,
  infrastructureRetries: number,
  retryable = true,
): Action[] {
  const name = nameOf(call);
  const fn = call.spec.function;
  const attempts = call.status?.attempts ?? 0;
  const infra = call.status?.infrastructureFailures ?? 0;
  const disrupted = call.status?.disruptions ?? 0;
  if (kind === "infrastructure") {
    const n = infra + 1;
    if (retryable && n <= infrastructureRetries) {
      return [
        { type: "status", patch: { phase: "Queued", infrastructureFailures: n, retryAfter: null } },
        { type: "enqueue" },
        {
          type: "event",
          eventType: "Warning",
          reason: "AttemptLost",
          message: `attempt ${attempts} of ${fn} lost to infrastructure (${error.message}); re-running (${n}/${infrastructureRetries})`,
        },
      ];
    }
    return failed(
      call,
      {
        type: error.type,
        message: `${error.message} (attempts lost to infrastructure: ${n}, limit ${infrastructureRetries})`,
        reason: callReasonOfKind(kind),
      },
      now,
    );
  }
  if (kind === "request_error") {
    return failed(
      call,
      { type: "RequestError", message: error.message, ...tb(error), reason: callReasonOfKind(kind) },
      now,
    );
  }
  const reason = callReasonOfKind(kind);
  const userFailures = attempts - infra - disrupted;
  if (retryable && userFailures <= policy.retries.maxRetries) {
    const delay = backoffMs(policy.retries, userFailures);
    return [
      {
        type: "status",
        patch: {
          phase: "Queued",
          retryAfter: isoTime(now + delay),
          error: { type: error.type, message: error.message, ...tb(error), reason },
        },
      },
      { type: "enqueue", notBefore: now + delay },
      {
        type: "event",
        eventType: "Warning",
        reason: "CallRetried",
        message: `${name} (${fn}) attempt ${attempts} failed (${error.type}: ${truncate(error.message)}); retry ${userFailures}/${policy.retries.maxRetries} in ${delay} ms`,
      },
    ];
  }
  return failed(call, { type: error.type, message: error.message, ...tb(error), reason }, now);
}

function failed(call: Call, error: CallError, now: number): Action[] {
  return [
    fail(error, now),
    {
      type: "event",
      eventType: "Warning",
      reason: "CallFailed",
      message: `${nameOf(call)} (${call.spec.function}) failed: ${error.type}: ${truncate(error.message)}`,
    },
  ];
}

export function timedOutError(call: Call, policy: CallPolicy): AttemptError {
  return {
    type: "TimeoutError",
    message: `function ${call.spec.function} timed out after ${policy.timeoutSeconds} s (attempt ${call.status?.attempts ?? 0})`,
  };
}

const tb = (e: AttemptError): { traceback?: string } => (e.traceback !== undefined ? { traceback: e.traceback } : {});
const truncate = (s: string): string => (s.length > 200 ? `${s.slice(0, 200)}…` : s);

/**
 * An attempt's pod went away under it (deleted, evicted, preempted, or silent: its node or network
 * lost). Not the call's doing, so it spends neither user nor infrastructure retries; the call is
 * re-run at once, up to a ceiling that only keeps it from running forever.
 */
export function decideDisruption(call: Call, error: AttemptError, now: number, ceiling: number): Action[] {
  const attempts = call.status?.attempts ?? 0;
  const n = (call.status?.disruptions ?? 0) + 1;
  if (n > ceiling)
    return failed(
      call,
      {
        type: error.type,
        message: `${error.message} (attempts lost to disruptions: ${n}, limit ${ceiling})`,
        reason: callReasonOfKind("infrastructure"),
      },
      now,
    );
  return [
    { type: "status", patch: { phase: "Queued", disruptions: n, retryAfter: null } },
    { type: "enqueue" },
    {
      type: "event",
      eventType: "Warning",
      reason: "AttemptDisrupted",
      message: `attempt ${attempts} of ${call.spec.function} lost (${error.message}); re-running (disruption ${n}, not counted as a retry)`,
    },
  ];
}
