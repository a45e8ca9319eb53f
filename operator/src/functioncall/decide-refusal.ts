// Calls that must end instead of running or waiting forever (pure): a root call carrying a pickle
// (only the operator may create calls with pickled values: a pickle runs code in the
// application's pod), and a call whose write the API server refused for good (a child create, a
// status write), which would otherwise be retried without end.
import { FAILURE_REASONS, type ValueRef } from "../../../protocol/index.js";
import type { Action } from "./actions.js";
import { fail } from "./attempts.js";
import { type Call, isRoot, isTerminal, phaseOf } from "./calls.js";

export const PICKLE_RULE = "pickled values are accepted only in calls the operator creates";

/** The fields of a call that hold a pickle, e.g. `spec.args[0].pickle`, in spec order. */
export function pickleFields(call: Call): string[] {
  const out: string[] = [];
  const check = (field: string, v: ValueRef | undefined) => {
    if (v?.pickle !== undefined) out.push(`${field}.pickle`);
  };
  const s = call.spec;
  (s.args ?? []).forEach((v, i) => check(`spec.args[${i}]`, v));
  for (const [k, v] of Object.entries(s.kwargs ?? {})) check(`spec.kwargs.${k}`, v);
  (s.map?.items ?? []).forEach((v, i) => check(`spec.map.items[${i}]`, v));
  (s.reduce?.items ?? []).forEach((v, i) => check(`spec.reduce.items[${i}]`, v));
  check("spec.reduce.initial", s.reduce?.initial);
  return out;
}

/** A root call with a pickle fails before it is dispatched; undefined when it may run. */
export function refuseRootPickles(call: Call, now: number): Action | undefined {
  if (!isRoot(call) || isTerminal(call)) return undefined;
  const fields = pickleFields(call);
  if (fields.length === 0) return undefined;
  return fail(
    {
      type: "InvalidCall",
      message: `${fields.join(", ")}: ${PICKLE_RULE}; a request (a FunctionCall without spec.parent) may hold only JSON values, call references and blobs`,
      reason: "invalid_call",
    },
    now,
  );
}

/** error.type of a call failed by a refused write. */
export const REFUSED_ERROR_TYPE = "ObjectRefused";

/**
 * The API server refused for good a write `call` needs (`message` names the object and the rule,
 * see kube refusalMessage): the call fails with reason object_refused; a running attempt is
 * aborted. Nothing when the call is gone or already over.
 */
export function decideRefused(call: Call | undefined, message: string, now: number): Action[] {
  if (!call || isTerminal(call)) return [];
  const out: Action[] = [{ type: "dequeue" }];
  const pod = call.status?.pod;
  if (phaseOf(call) === "Running" && pod !== undefined)
    out.push({ type: "cancelAttempt", pod, attempt: call.status?.attempts ?? 0 });
  out.push(
    { type: "event", eventType: "Warning", reason: "ObjectRefused", message },
    fail({ type: REFUSED_ERROR_TYPE, message, reason: FAILURE_REASONS.object_refused.callReason }, now),
  );
  return out;
}

/** Whether a status patch is itself the failure a refusal writes (so a refusal of it is not retried). */
export const isRefusalPatch = (patch: Record<string, unknown>): boolean =>
  (patch.error as { type?: string } | undefined)?.type === REFUSED_ERROR_TYPE;
