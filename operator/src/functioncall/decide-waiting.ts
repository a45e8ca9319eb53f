// The deferred write of a waiting phase (Blocked, Queued, or Running for a map/reduce or a call
// created assigned), decided
// when its delay is up: written only if the call still waits in that phase, so a call dispatched
// at once never pays it (create → Running → Succeeded).
import type { Action, CallView, StatusPatch, WaitingPhase } from "./actions.js";
import { type Call, isCollection, isStatusAssumed, isTerminal, isoTime, phaseOf } from "./calls.js";
import { readiness } from "./inputs.js";

export function decideWaitingWrite(cur: Call | undefined, phase: WaitingPhase, view: CallView, now: number): Action[] {
  if (!cur || isTerminal(cur) || !stillWaiting(cur, phase, view)) return [];
  const patch: StatusPatch = { phase };
  if (phase === "Queued" && cur.status?.queuedTime === undefined) patch.queuedTime = isoTime(now);
  return [{ type: "status", patch }];
}

function stillWaiting(c: Call, phase: WaitingPhase, view: CallView): boolean {
  const p = phaseOf(c);
  const early = p === "Pending" || p === "Blocked";
  // Queued: ready and on its queue. Running: a map/reduce whose children run, or a call created
  // assigned to a pod (its Running status is only in the create's annotation so far).
  if (phase === "Queued") return early && view.queued(c);
  if (phase === "Running") return (early && isCollection(c)) || (p === "Running" && isStatusAssumed(c));
  // Blocked: not ready (an input still runs), never queued.
  return p === "Pending" && !view.queued(c) && (isCollection(c) || !readiness(c, (n) => view.call(n)).ready);
}
