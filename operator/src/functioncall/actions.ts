// What a decision asks for, as plain data. Decisions are pure; one apply step (apply.ts) performs
// these. Writes (status, create, deleteRequest) are awaited in order; every other action is an
// effect without I/O, performed at once (graph reactions are effects only).
import type { Phase, ValueRef } from "../../../protocol/index.js";
import type { PodState } from "../dispatch/index.js";
import type { Call } from "./calls.js";
import type { CallPolicy } from "./policy.js";

export type { PodState };

/** An output as decided; apply moves it to the blob store when it is over the inline limit. */
export type OutputDoc = ValueRef;

/** A JSON merge patch of status; null removes a field. */
export type StatusPatch = Record<string, unknown>;

/** Phases written only when a call still waits in them after a delay. */
export type WaitingPhase = "Blocked" | "Queued" | "Running";

/** Writes to the API server (and the blob store): awaited, in order. */
export type Write =
  /** Write status. `output`, when set, is stored first (blob when over the inline limit). */
  | { type: "status"; patch: StatusPatch; output?: OutputDoc }
  /** Create calls; those that exist already are reported back (ApplyResult.existing). */
  | { type: "create"; calls: Call[] }
  /** Delete the request: the root (children go with it by ownerReference) and its blobs. */
  | { type: "deleteRequest" }
  /**
   * Label the call settled: a Delegated link nothing reads again. It leaves the operator's caches
   * (the watch selects unsettled calls); etcd keeps it. Best effort: a link left unsettled still
   * takes its tail's outcome.
   */
  | { type: "settle" };

/** Effects without I/O on the API server, performed at once. */
export type Effect =
  /** Put the call on its function's ready queue, not before `notBefore` (ms since epoch). */
  | { type: "enqueue"; notBefore?: number }
  | { type: "dequeue" }
  /** Tell the pod running this attempt to abort it (answer of its next heartbeat). */
  | { type: "cancelAttempt"; pod: string; attempt: number }
  /** A Running call the dispatcher does not know (operator restart): watch its pod. */
  | { type: "track"; pod: string; attempt: number }
  /** The Running write of an assignment is persisted: the pod runs `attempt` (and the dispatch latency). */
  | { type: "assigned"; pod: string; attempt: number; queuedMs: number }
  | { type: "event"; eventType: "Normal" | "Warning"; reason: string; message: string }
  /** Write a waiting phase only if the call is still waiting after the configured delay. */
  | { type: "markWaiting"; phase: WaitingPhase }
  /** Read the list output of `from` (a blob) so that a later decision can expand it. */
  | { type: "loadItems"; from: string }
  /** Reconcile these calls (of the call's namespace). */
  | { type: "reconcile"; names: string[] }
  /** The call left Running on `pod` (finished, re-queued, re-assigned, deleted). */
  | { type: "release"; pod: string }
  /** Wake the /wait long-polls on the call. */
  | { type: "notifyWaiters" }
  /** Drop the call's pending progress write. */
  | { type: "forgetProgress" }
  /** Drop the list items read from the call's output blob. */
  | { type: "forgetItems" }
  /** The call reached a final phase (metrics). */
  | { type: "finished"; phase: Phase }
  /** Delete the request's blobs in the background (the root is gone). */
  | { type: "deleteBlobs" };

export type Action = Write | Effect | { type: "requeueAfter"; ms: number };

export type ItemsResult = { items: ValueRef[] } | { error: string } | { loading: true };

/** What a decision may read besides the call itself. Names are in the call's namespace. */
export interface CallView {
  namespace: string;
  call(name: string): Call | undefined;
  children(parent: string): Call[];
  /** Calls that delegated their output to `name` (their status.tailCall). */
  delegatorsOf(name: string): string[];
  /** Calls that take `name`'s output as an input. */
  dependentsOf(name: string): string[];
  /** Whether a pod waits on `name` now (a /wait long-poll holds for it). */
  waitedOn(name: string): boolean;
  /**
   * The outputs of `parent`'s children by sequence 0..n-1 (a Succeeded child without one: null),
   * when each of them exists and Succeeded; read from shard entries without decoding the items.
   */
  childOutputs(parent: string, n: number): ValueRef[] | undefined;
  /** Counts over `parent`'s children (cheap: no list). */
  childStats(parent: string): { count: number; succeeded: number; failed: string | undefined };
  requestError(request: string): string | undefined;
  policy(call: Call): CallPolicy;
  /** Standing of the pod running `call`'s attempt. */
  pod(pod: string, call: string, attempt: number): PodState;
  /** Whether the call is on its function's ready queue. */
  queued(call: Call): boolean;
  /** The items held by the (Succeeded) output of `name`, for `itemsFrom`. */
  items(name: string): ItemsResult;
  ttlSecondsAfterFinished(call: Call): number | undefined;
  timeoutGraceMs: number;
  /**
   * Until this time (ms) the operator times out no Running attempt: it has just taken over, and a
   * pod that finished, or stopped the attempt at its timeout itself, may still be reporting what
   * happened while no operator could take it.
   */
  reportGraceUntil: number;
  infrastructureRetries: number;
  disruptionRetries: number;
  /** Largest inline value of a child's input (JSON bytes). */
  inlineValueLimitBytes: number;
  /** Largest FunctionCall spec (and request state value). */
  maxCallSpecBytes: number;
  /** Maps of at least this many items keep them in shards. */
  shardMinItems: number;
}
