// A ready call is handed to a pod that leased it: decided here (pure), applied under the call's
// lock before the lease is answered, so nothing runs unseen. The Running write carries the pod,
// the new attempt, its start time and, for a call that never had Queued written, the time it
// became ready; `{call}` inputs are resolved to their outputs in the assignment.
import {
  ASSIGNED_ANNOTATION,
  type AssignedAtCreate,
  type Assignment,
  type ValueRef,
  assignedAnnotation,
} from "../../../protocol/index.js";
import type { Action, CallView, Effect, StatusPatch } from "./actions.js";
import {
  type Call,
  isCollection,
  isDeleting,
  isRoot,
  isoTime,
  nameOf,
  notBeforeOf,
  phaseOf,
  requestOf,
  shardOf,
} from "./calls.js";
import { readiness } from "./inputs.js";

export type AssignmentDecision =
  /** No longer dispatchable (finished, running, deleting, a map/reduce, an input not Succeeded). */
  | { type: "skip" }
  /** Not before this time (retry backoff, run_later): back to the queue until then. */
  | { type: "defer"; notBefore: number }
  /** Write Running, count the attempt on the pod, then hand the pod `assignment`. */
  | { type: "assign"; actions: Action[]; assignment: Assignment };

export function decideAssignment(
  cur: Call | undefined,
  view: CallView,
  pod: string,
  readyAt: number,
  now: number,
): AssignmentDecision {
  if (!cur || !dispatchable(cur, view)) return { type: "skip" };
  const notBefore = notBeforeOf(cur);
  if (notBefore !== undefined && notBefore > now) return { type: "defer", notBefore };
  const attempt = (cur.status?.attempts ?? 0) + 1;
  const patch: StatusPatch = { phase: "Running", pod, attempts: attempt, startTime: isoTime(now), retryAfter: null };
  if (cur.status?.queuedTime === undefined) patch.queuedTime = isoTime(readyAt);
  return {
    type: "assign",
    actions: [
      { type: "status", patch },
      { type: "assigned", pod, attempt, queuedMs: now - readyAt },
    ],
    assignment: assignmentOf(cur, attempt, view),
  };
}

/** A child created already assigned: the object to create, its annotation, the effects once made, the pod's message. */
export interface AssignedChild {
  child: Call;
  annotation: string;
  effects: Effect[];
  assignment: Assignment;
}

/**
 * A running call's new child that a parked lease of `pod` takes as it is created: decided as any
 * assignment (ready, not deferred), but its Running status is the create's annotation instead of
 * a write of its own. Undefined when the child goes through the ready queue.
 */
export function decideAssignedAtCreate(
  child: Call,
  view: CallView,
  pod: string,
  now: number,
): AssignedChild | undefined {
  const d = decideAssignment(child, view, pod, now, now);
  if (d.type !== "assign" || d.assignment.attempt !== 1) return undefined;
  const a: AssignedAtCreate = { pod, attempt: 1, startTime: isoTime(now), queuedTime: isoTime(now) };
  const annotation = assignedAnnotation(a);
  const annotations = { ...child.metadata.annotations, [ASSIGNED_ANNOTATION]: annotation };
  return {
    child: { ...child, metadata: { ...child.metadata, annotations } },
    annotation,
    effects: [{ type: "assigned", pod, attempt: 1, queuedMs: 0 }],
    assignment: d.assignment,
  };
}

function dispatchable(c: Call, view: CallView): boolean {
  const p = phaseOf(c);
  if (p !== "Pending" && p !== "Blocked" && p !== "Queued") return false;
  if (isDeleting(c) || isCollection(c)) return false;
  return readiness(c, (n) => view.call(n)).ready;
}

/** The message the pod gets: inputs resolved, the effective timeout, whether it is the request's root. */
export function assignmentOf(c: Call, attempt: number, view: CallView): Assignment {
  const resolve = (v: NonNullable<Call["spec"]["args"]>[number]) =>
    v.call === undefined ? v : (view.call(v.call)?.status?.output ?? { value: null });
  return {
    call: nameOf(c),
    attempt,
    function: c.spec.function,
    request: requestOf(c),
    args: (c.spec.args ?? []).map(resolve),
    kwargs: Object.fromEntries(Object.entries(c.spec.kwargs ?? {}).map(([k, v]) => [k, resolve(v)])),
    headers: c.spec.headers ?? {},
    timeoutSeconds: view.policy(c).timeoutSeconds,
    isRoot: isRoot(c),
  };
}

/**
 * The dependents that `input`'s result makes ready, at most `max`: each is assigned while the
 * result is written (its Running write beside the input's Succeeded write). `view` shows the input
 * Succeeded with `output`, as the assignment needs it. Map items (their shard's writes are grouped)
 * and calls not otherwise dispatchable are left to the reaction to the Succeeded write.
 */
export function dependentsReadyWith(
  input: Call,
  output: ValueRef,
  view: CallView,
  max: number,
): { view: CallView; ready: Call[] } {
  const name = nameOf(input);
  const succeeded: Call = { ...input, status: { ...input.status, phase: "Succeeded", output } };
  const withResult: CallView = { ...view, call: (n) => (n === name ? succeeded : view.call(n)) };
  const ready: Call[] = [];
  for (const n of view.dependentsOf(name)) {
    const c = view.call(n);
    if (!c || shardOf(c) !== undefined || !dispatchable(c, withResult) || notBeforeOf(c) !== undefined) continue;
    ready.push(c);
    if (ready.length >= max) break;
  }
  return { view: withResult, ready };
}

/** The status patch that takes back an assignment no pod heard of: each field it set, as it was. */
export function unassignPatch(before: Call["status"], running: StatusPatch): StatusPatch {
  const prev = (before ?? {}) as Record<string, unknown>;
  return Object.fromEntries(Object.keys(running).map((k) => [k, prev[k] ?? null])) as StatusPatch;
}
