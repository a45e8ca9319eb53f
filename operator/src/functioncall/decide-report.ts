// What a pod reports about a call it runs: result, failure, tail call, progress. Each is checked
// against the current attempt and decided as actions (pure); the engine applies them under the
// call's lock. A retried report of an attempt that already ended is acknowledged with no action.
import type { FailureKind, ValueRef } from "../../../protocol/index.js";
import type { Action, CallView } from "./actions.js";
import { type AttemptError, decideAttemptFailure, delegate, succeed } from "./attempts.js";
import { type Call, isTerminal, phaseOf, requestOf } from "./calls.js";
import type { ProgressValue } from "./progress.js";
import { type Rejection, reject, rejections } from "./rejections.js";

/** Which attempt of which call a pod reports on. */
export interface AttemptReport {
  pod: string;
  name: string;
  attempt: number;
}

/**
 * The call if `attempt` is its running attempt on this pod; "duplicate" if that attempt already
 * ended (a retried report); a rejection otherwise. With `lateSuccess`, an attempt the operator
 * gave up on as lost (re-queued, not started again) still counts: its work is done, so it is kept.
 */
export function currentAttempt(
  cur: Call | undefined,
  r: AttemptReport,
  lateSuccess = false,
): Call | "duplicate" | Rejection {
  if (!cur) return rejections.callNotFound(r.name);
  if (cur.status?.pod !== r.pod) return rejections.notAssigned(r.name, r.pod);
  const current = cur.status?.attempts ?? 0;
  const phase = phaseOf(cur);
  if (current !== r.attempt) return rejections.staleAttempt(r.name, r.attempt, current, phase);
  if (phase === "Running") return cur;
  if (isTerminal(cur) || phase === "Delegated") return "duplicate";
  if (lateSuccess && phase === "Queued" && cur.status?.retryAfter === undefined) return cur;
  return rejections.staleAttempt(r.name, r.attempt, current, phase);
}

/** A value a pod hands in may name blobs of its own namespace only. */
export function checkBlobRef(v: ValueRef, namespace: string, field: string): Rejection | undefined {
  if (v.blob !== undefined && !v.blob.startsWith(`${namespace}/`))
    return rejections.foreignBlob(field, namespace, v.blob);
  return undefined;
}

export function decideResult(
  cur: Call | undefined,
  r: AttemptReport & { output: ValueRef },
  view: CallView,
  now: number,
): Action[] | Rejection {
  const bad = checkBlobRef(r.output, view.namespace, "body.output");
  if (bad) return bad;
  const c = currentAttempt(cur, r, true);
  if (c === "duplicate") return [];
  if ("rejected" in c) return c;
  return [{ type: "dequeue" }, succeed(r.output, now)];
}

export function decideFailure(
  cur: Call | undefined,
  r: AttemptReport & { kind: FailureKind; error: AttemptError; retryable: boolean },
  view: CallView,
  now: number,
): Action[] | Rejection {
  const c = currentAttempt(cur, r);
  if (c === "duplicate") return [];
  if ("rejected" in c) return c;
  return decideAttemptFailure(c, view.policy(c), r.kind, r.error, now, view.infrastructureRetries, r.retryable);
}

export function decideTail(
  cur: Call | undefined,
  r: AttemptReport & { tailCall: string },
  view: CallView,
): Action[] | Rejection {
  const c = currentAttempt(cur, r, true);
  if (c === "duplicate") return [];
  if ("rejected" in c) return c;
  const tail = view.call(r.tailCall);
  if (!tail || r.tailCall === r.name || requestOf(tail) !== requestOf(c))
    return reject(
      "unknown_tail_call",
      `body.tailCall: ${r.tailCall} is not a call of request ${requestOf(c)} (create it with /children first)`,
    );
  return [{ type: "dequeue" }, delegate(r.tailCall)];
}

/** Progress names no attempt: any call assigned to this pod may report it (a finished one is ignored later). */
export function checkProgress(cur: Call | undefined, pod: string, name: string): Rejection | undefined {
  const c = currentAttempt(cur, { pod, name, attempt: cur?.status?.attempts ?? 0 });
  return c !== "duplicate" && "rejected" in c ? c : undefined;
}

/** The throttled progress write: only while the call runs. */
export function decideProgressWrite(cur: Call | undefined, progress: ProgressValue): Action[] {
  return cur && phaseOf(cur) === "Running" ? [{ type: "status", patch: { progress } }] : [];
}
