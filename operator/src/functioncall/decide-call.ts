// decideCall: the whole FunctionCall state machine as a pure function (semantics of DESIGN.md).
// Pending → Blocked → Queued → Running → Succeeded | Failed | Cancelled, and Delegated.
import type { Action, CallView } from "./actions.js";
import { cancelled, decideAttemptFailure, decideDisruption, fail, succeed, timedOutError } from "./attempts.js";
import {
  type Call,
  isCollection,
  isDeleting,
  isStatusAssumed,
  isRoot,
  isTerminal,
  nameOf,
  notBeforeOf,
  parseTime,
  phaseOf,
  requestOf,
  shardOf,
} from "./calls.js";
import { decideMap, decideReduce } from "./collections.js";
import { refuseRootPickles } from "./decide-refusal.js";
import { inputFailure, readiness } from "./inputs.js";

export function decideCall(call: Call, view: CallView, now: number): Action[] {
  if (isTerminal(call)) return isRoot(call) ? decideTtl(call, view, now) : [];
  const stop = decideStop(call, view, now);
  if (stop) return stop;
  const refused = refuseRootPickles(call, now);
  if (refused) return [...abortActions(call), refused];
  const phase = phaseOf(call);
  if (phase === "Delegated") return decideDelegated(call, view, now);
  if (phase === "Running" && call.status?.pod !== undefined) return decideRunning(call, view, now);
  if (call.spec.map) return decideMap(call, view, now);
  if (call.spec.reduce) return decideReduce(call, view, now);
  const r = readiness(call, (n) => view.call(n));
  if (r.ready) {
    const notBefore = notBeforeOf(call);
    return [notBefore !== undefined && notBefore > now ? { type: "enqueue", notBefore } : { type: "enqueue" }];
  }
  if (r.failed) return [{ type: "dequeue" }, fail(inputFailure(r.failed.name, r.failed.call), now)];
  return [{ type: "markWaiting", phase: "Blocked" }];
}

/** Deletion, a finished request, a failed map around this call, a RequestError elsewhere. */
function decideStop(call: Call, view: CallView, now: number): Action[] | undefined {
  const abort = abortActions(call);
  if (isDeleting(call)) return abort;
  const stop = isRoot(call) ? requestErrorStop(call, view, now) : enclosingStop(call, view, now);
  return stop && [...abort, stop];
}

/** A root fails with the first RequestError raised anywhere in its request. */
function requestErrorStop(call: Call, view: CallView, now: number): Action | undefined {
  const culprit = view.requestError(nameOf(call));
  if (culprit === undefined || culprit === nameOf(call)) return undefined;
  const src = view.call(culprit);
  return fail(
    {
      type: "RequestError",
      message: src?.status?.error?.message ?? "request failed",
      reason: "request_error",
      cause: culprit,
    },
    now,
  );
}

/** A child is cancelled when its request is deleted or over, or the map/reduce it belongs to failed. */
function enclosingStop(call: Call, view: CallView, now: number): Action | undefined {
  const root = view.call(requestOf(call));
  if (!root || isDeleting(root)) return cancelled(`request ${requestOf(call)} was deleted`, now);
  const rp = phaseOf(root);
  if (rp === "Failed" || rp === "Cancelled")
    return cancelled(`request ${requestOf(call)} ${rp === "Failed" ? "failed" : "was cancelled"}`, now);
  const parent = call.spec.parent ? view.call(call.spec.parent) : undefined;
  if (!parent || !(parent.spec.map || parent.spec.reduce)) return undefined;
  const pp = phaseOf(parent);
  if (pp === "Failed" || pp === "Cancelled")
    return cancelled(`${parent.spec.map ? "map" : "reduce"} ${nameOf(parent)} failed`, now);
  return undefined;
}

function abortActions(call: Call): Action[] {
  const out: Action[] = [{ type: "dequeue" }];
  const pod = call.status?.pod;
  if (phaseOf(call) === "Running" && pod !== undefined)
    out.push({ type: "cancelAttempt", pod, attempt: call.status?.attempts ?? 0 });
  return out;
}

/**
 * A Delegated call takes the outcome of its tail call. While the tail delegates in turn, a call no
 * one delegates to (the head: a request, or a call some pod or input waits on) waits on the tail's
 * tail instead (one write), and a link nothing reads any more is settled: a chain of any depth
 * keeps one head and one live link in memory, and ends with one write, the head's.
 */
function decideDelegated(call: Call, view: CallView, now: number): Action[] {
  const tailName = call.status?.tailCall;
  const tail = tailName === undefined ? undefined : view.call(tailName);
  if (tailName === undefined || !tail)
    return [
      fail(
        { type: "InternalError", message: `tail call ${tailName ?? "(none)"} does not exist`, reason: "invalid_call" },
        now,
      ),
    ];
  const outcome = tailOutcome(tail, now);
  if (outcome) return [outcome];
  if (unread(call, view)) return [{ type: "settle" }];
  const next = tail.status?.tailCall;
  // Only a head moves: a link keeps its tail while anyone waits on the link, so the call a head
  // moves to always has a delegator until the head's write lands, and is never settled under it.
  // The next link is the tail's own child: no cycle can form.
  const passed = phaseOf(tail) === "Delegated" && next !== undefined && view.call(next)?.spec.parent === tailName;
  return passed && isHead(call, view) && mayMove(call, view) ? [{ type: "status", patch: { tailCall: next } }] : [];
}

/**
 * A head moves only while something reads it (a request, a map item, an input, a pod's wait) or
 * nothing can delegate to it later: its parent's attempt is over. A link whose parent still runs
 * may be about to become that parent's tail; had it moved, its tailCall would not be its own
 * child and the head that reaches it could not pass it (it would wait there for the chain's end).
 */
function mayMove(call: Call, view: CallView): boolean {
  if (isRoot(call) || shardOf(call) !== undefined) return true;
  const name = nameOf(call);
  if (view.dependentsOf(name).length > 0 || view.waitedOn(name)) return true;
  const parent = view.call(call.spec.parent!);
  return !parent || phaseOf(parent) === "Delegated" || isTerminal(parent) || isCollection(parent);
}

/** The delegator's final write when its tail has ended. */
function tailOutcome(tail: Call, now: number): Action | undefined {
  const p = phaseOf(tail);
  const name = nameOf(tail);
  if (p === "Succeeded") return succeed(tail.status?.output ?? { value: null }, now);
  if (p === "Failed") {
    const e = tail.status?.error ?? { type: "FunctionError", message: `${name} failed` };
    return fail({ ...e, cause: e.cause ?? name }, now);
  }
  if (p === "Cancelled") return cancelled(`tail call ${name} was cancelled`, now);
  return undefined;
}

const isHead = (call: Call, view: CallView): boolean => view.delegatorsOf(nameOf(call)).length === 0;

/**
 * Nothing reads this Delegated call's outcome again: no delegator, no dependent, not a request,
 * not a map item (its shard holds it), and its parent's attempt is over (a running or re-run parent
 * may still wait on it or re-attach to it).
 */
function unread(call: Call, view: CallView): boolean {
  if (isRoot(call) || shardOf(call) !== undefined || !isHead(call, view)) return false;
  if (view.dependentsOf(nameOf(call)).length > 0) return false;
  const parent = call.spec.parent === undefined ? undefined : view.call(call.spec.parent);
  if (!parent) return true;
  const pp = phaseOf(parent);
  return pp === "Delegated" || isTerminal(parent);
}

/** A running attempt: the operator's own timeout, and the liveness of its pod. */
function decideRunning(call: Call, view: CallView, now: number): Action[] {
  const pod = call.status!.pod!;
  const attempt = call.status?.attempts ?? 0;
  const policy = view.policy(call);
  const start = parseTime(call.status?.startTime) ?? now;
  const deadline = Math.max(start + policy.timeoutSeconds * 1000 + view.timeoutGraceMs, view.reportGraceUntil);
  if (now >= deadline) {
    return [
      { type: "cancelAttempt", pod, attempt },
      {
        type: "event",
        eventType: "Warning",
        reason: "AttemptTimedOut",
        message: `attempt ${attempt} of ${call.spec.function} exceeded ${policy.timeoutSeconds} s on pod ${pod}`,
      },
      ...decideAttemptFailure(call, policy, "timeout", timedOutError(call, policy), now, view.infrastructureRetries),
    ];
  }
  const state = view.pod(pod, nameOf(call), attempt);
  if (state === "gone" || state === "lost") {
    const what = state === "gone" ? `pod ${pod} was deleted` : `pod ${pod} stopped sending heartbeats`;
    return [
      { type: "event", eventType: "Warning", reason: "PodLost", message: `${what} while running attempt ${attempt}` },
      ...decideDisruption(call, { type: "InfrastructureError", message: what }, now, view.disruptionRetries),
    ];
  }
  const out: Action[] = [];
  if (state === "untracked") out.push({ type: "track", pod, attempt });
  // Created assigned: Running is written for readers of the object only if it still runs then.
  if (isStatusAssumed(call)) out.push({ type: "markWaiting", phase: "Running" });
  out.push({ type: "requeueAfter", ms: deadline - now });
  return out;
}

/** A finished request is deleted `ttlSecondsAfterFinished` after it finished. */
function decideTtl(call: Call, view: CallView, now: number): Action[] {
  const ttl = view.ttlSecondsAfterFinished(call);
  if (ttl === undefined || isDeleting(call)) return [];
  const done = parseTime(call.status?.completionTime) ?? now;
  const at = done + ttl * 1000;
  return now >= at ? [{ type: "deleteRequest" }] : [{ type: "requeueAfter", ms: at - now }];
}
