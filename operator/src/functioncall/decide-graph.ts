// Reactions to a change of one call in the graph (a watch event or a write response), decided as
// effects (pure) and applied at once: who to reconcile, which pod the call left, the waiters to
// wake, what to forget, the request's blobs to delete, the metrics hook to fire.
import type { Effect } from "./actions.js";
import { type Call, isCollection, isDeleting, isRoot, isTerminal, nameOf, phaseOf, requestOf } from "./calls.js";

/** The relations of the graph a reaction walks (names in the call's namespace). */
export interface GraphIndex {
  call(name: string): Call | undefined;
  /** Calls that read `name`'s output. */
  dependentsOf(name: string): string[];
  /** Calls that delegated their output to `name` (tail calls). */
  delegatorsOf(name: string): string[];
  childrenOf(name: string): string[];
  callsOfRequest(request: string): string[];
}

/** `prev` → `next` of one call; `next` undefined: deleted; `prev` undefined: new. */
export function decideGraphChange(prev: Call | undefined, next: Call | undefined, g: GraphIndex): Effect[] {
  const c = next ?? prev;
  if (!c) return [];
  const out: Effect[] = [];
  if (!prev) out.push(reconcile([nameOf(c)]));
  const left = leftPod(prev, next);
  if (left !== undefined) out.push({ type: "release", pod: left });
  if (next && prev) out.push(...changed(prev, next, g));
  const finished = !next || (isTerminal(next) && !(prev && isTerminal(prev)));
  if (finished && prev) out.push(...finishedEffects(c, next, g));
  return out;
}

const reconcile = (names: string[]): Effect => ({ type: "reconcile", names });

/** A change the call's own reconcile must see at once. */
function changed(prev: Call, next: Call, g: GraphIndex): Effect[] {
  const p = phaseOf(next);
  const out: Effect[] = [];
  // Running arms the operator's timeout; Delegated may find its tail already finished.
  if ((p === "Running" || p === "Delegated") && phaseOf(prev) !== p) out.push(reconcile([nameOf(next)]));
  out.push(...tailChainChanges(prev, next, g));
  if (isDeleting(next) && !isDeleting(prev)) out.push(reconcile([nameOf(next)]));
  return out;
}

/**
 * Tail chains (decideDelegated): a call that delegated has its delegators move on to its tail; a
 * call that moved to another tail checks that one at once; the tail it left may have no reader.
 */
function tailChainChanges(prev: Call, next: Call, g: GraphIndex): Effect[] {
  const out: Effect[] = [];
  const delegated = phaseOf(next) === "Delegated";
  if (delegated && phaseOf(prev) !== "Delegated") {
    const by = g.delegatorsOf(nameOf(next));
    if (by.length > 0) out.push(reconcile(by));
  }
  const was = prev.status?.tailCall;
  if (was === undefined || was === next.status?.tailCall) return out;
  if (delegated && phaseOf(prev) === "Delegated") out.push(reconcile([nameOf(next)]));
  out.push(reconcile([was]));
  return out;
}

/** The pod a Running attempt left (phase, pod or attempt changed, or the call is gone). */
function leftPod(prev: Call | undefined, next: Call | undefined): string | undefined {
  const pod = prev?.status?.pod;
  if (!prev || phaseOf(prev) !== "Running" || pod === undefined) return undefined;
  const same =
    next !== undefined &&
    phaseOf(next) === "Running" &&
    next.status?.pod === pod &&
    next.status?.attempts === prev.status?.attempts;
  return same ? undefined : pod;
}

/** The call reached a final phase or was deleted: everyone who waits on it hears of it. */
function finishedEffects(c: Call, next: Call | undefined, g: GraphIndex): Effect[] {
  const out: Effect[] = [{ type: "notifyWaiters" }, { type: "forgetProgress" }];
  if (next) out.push({ type: "finished", phase: phaseOf(next) });
  out.push({ type: "dequeue" });
  const waiting = waitingOn(c, next, g);
  if (waiting.length > 0) out.push(reconcile(waiting));
  if (!next) out.push({ type: "forgetItems" });
  // A settled (or deleted) link no longer waits on its tail.
  if (!next && c.status?.tailCall !== undefined) out.push(reconcile([c.status.tailCall]));
  // A deleted request takes its blobs (outputs, uploads, state) with it.
  if (!next && isRoot(c)) out.push({ type: "deleteBlobs" });
  const stop = toStop(c, next, g);
  if (stop.length > 0) out.push(reconcile(stop));
  return out;
}

/** Calls that read the outcome: dependents, delegators, the map/reduce it is an item of, a root's TTL. */
function waitingOn(c: Call, next: Call | undefined, g: GraphIndex): string[] {
  const name = nameOf(c);
  const names = [...g.dependentsOf(name), ...g.delegatorsOf(name)];
  const parent = c.spec.parent ? g.call(c.spec.parent) : undefined;
  if (parent && isCollection(parent)) names.push(c.spec.parent!);
  if (next && isRoot(c)) names.push(name); // its TTL
  return names;
}

/** Calls a failure stops: a failed or deleted request's calls, a failed map's items, a RequestError's root. */
function toStop(c: Call, next: Call | undefined, g: GraphIndex): string[] {
  const name = nameOf(c);
  const failed = !next || phaseOf(next) === "Failed" || phaseOf(next) === "Cancelled";
  const out: string[] = [];
  if (failed && isRoot(c)) out.push(...g.callsOfRequest(name));
  if (failed && isCollection(c)) out.push(...g.childrenOf(name));
  if (next?.status?.error?.reason === "request_error" && phaseOf(next) === "Failed") out.push(requestOf(c));
  return out;
}
