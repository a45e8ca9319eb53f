// Small readers over FunctionCall objects shared by the graph, the decisions and the dispatcher.
import {
  SHARD_ANNOTATION,
  type CallError,
  type FunctionCall,
  type Phase,
  TERMINAL_PHASES,
  type ValueRef,
  statusOfCall,
} from "../../../protocol/index.js";
import type { CallRef } from "../dispatch/index.js";
import type { KubeObject } from "../kube/index.js";

export type Call = FunctionCall & KubeObject;

/** Calls whose status the engine took from their create's assignment (none written yet). */
const assumed = new WeakSet<Call>();

/**
 * A call as the engine holds it: created assigned to a pod and no status written since, it is
 * Running on that pod (protocol/src/assigned-at-create.ts); else the object as it is.
 */
export function withAssignedStatus(c: Call): Call {
  const status = statusOfCall(c);
  if (status === c.status) return c;
  const out: Call = { ...c, status };
  assumed.add(out);
  return out;
}

/** Whether the call's Running status is only in its create's annotation, not yet written. */
export const isStatusAssumed = (c: Call): boolean => assumed.has(c);

export const nameOf = (c: Call): string => c.metadata.name ?? "";
export const namespaceOf = (c: Call): string => c.metadata.namespace ?? "";
export const callKey = (namespace: string, name: string): string => `${namespace}/${name}`;
export const keyOfCall = (c: Call): string => callKey(namespaceOf(c), nameOf(c));

export const phaseOf = (c: Call): Phase => c.status?.phase ?? "Pending";
export const isTerminalPhase = (p: Phase): boolean => TERMINAL_PHASES.includes(p);
export const isTerminal = (c: Call): boolean => isTerminalPhase(phaseOf(c));
export const isRoot = (c: Call): boolean => c.spec.parent === undefined;
/** The root call's name: the request id. */
export const requestOf = (c: Call): string => c.spec.request ?? nameOf(c);
export const isCollection = (c: Call): boolean => c.spec.map !== undefined || c.spec.reduce !== undefined;
export const isDeleting = (c: Call): boolean => c.metadata.deletionTimestamp !== undefined;
/** The shard holding this map item; undefined for a call that is an object of its own. */
export const shardOf = (c: Call): string | undefined => c.metadata.annotations?.[SHARD_ANNOTATION];
export const isShardObject = (c: Call): boolean => c.spec.shard !== undefined;

/** The call as the dispatcher knows it: a name on the ready queue of its function. */
export const refOf = (c: Call): CallRef => ({
  namespace: namespaceOf(c),
  name: nameOf(c),
  application: c.spec.application,
  function: c.spec.function,
});

/** The persisted running attempt and its pod; undefined unless the call is Running in a pod. */
export function runningAttemptOf(c: Call | undefined): { pod: string; attempt: number } | undefined {
  const pod = c?.status?.pod;
  if (!c || phaseOf(c) !== "Running" || pod === undefined) return undefined;
  return { pod, attempt: c.status?.attempts ?? 0 };
}

/** `{call}` references among positional and keyword arguments: what a dispatched call waits on. */
export function argumentInputs(c: Call): string[] {
  const out: string[] = [];
  const add = (v: ValueRef | undefined) => {
    if (v?.call !== undefined) out.push(v.call);
  };
  for (const v of c.spec.args ?? []) add(v);
  for (const v of Object.values(c.spec.kwargs ?? {})) add(v);
  return out;
}

/** Every call this one reads: arguments, collection items, `itemsFrom`, reduce `initial`. */
export function allInputs(c: Call): string[] {
  const out = argumentInputs(c);
  const coll = c.spec.map ?? c.spec.reduce;
  if (coll) {
    for (const v of coll.items ?? []) if (v.call !== undefined) out.push(v.call);
    if (coll.itemsFrom !== undefined) out.push(coll.itemsFrom);
  }
  const init = c.spec.reduce?.initial;
  if (init?.call !== undefined) out.push(init.call);
  return out;
}

export interface Outcome {
  call: string;
  phase: "Succeeded" | "Failed" | "Cancelled";
  output?: ValueRef;
  error?: CallError;
}

/** The outcome of a finished call; undefined while it is not finished. */
export function outcomeOf(c: Call): Outcome | undefined {
  const p = phaseOf(c);
  if (p !== "Succeeded" && p !== "Failed" && p !== "Cancelled") return undefined;
  const o: Outcome = { call: nameOf(c), phase: p };
  if (c.status?.output !== undefined) o.output = c.status.output;
  if (c.status?.error !== undefined) o.error = c.status.error;
  return o;
}

export const parseTime = (s: string | undefined): number | undefined => {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
};
export const isoTime = (ms: number): string => new Date(ms).toISOString();

/** The call may not start before this (retry backoff or run_later); undefined when it may now. */
export function notBeforeOf(c: Call): number | undefined {
  const a = parseTime(c.status?.retryAfter);
  const b = parseTime(c.spec.startAfter);
  if (a === undefined) return b;
  return b === undefined ? a : Math.max(a, b);
}
