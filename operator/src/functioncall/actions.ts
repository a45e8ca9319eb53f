// What a decision asks for. Decisions are pure; the controller's apply step performs these.
import type { ValueRef } from "../../../protocol/index.js";
import type { Call } from "./calls.js";
import type { CallPolicy } from "./policy.js";

/** An output as decided; apply moves it to the blob store when it is over the inline limit. */
export type OutputDoc = ValueRef;

/** A JSON merge patch of status; null removes a field. */
export type StatusPatch = Record<string, unknown>;

export type Action =
  /** Write status. `output`, when set, is stored first (blob when over the inline limit). */
  | { type: "status"; patch: StatusPatch; output?: OutputDoc }
  | { type: "create"; calls: Call[] }
  /** Put the call on its function's ready queue, not before `notBefore` (ms since epoch). */
  | { type: "enqueue"; notBefore?: number }
  | { type: "dequeue" }
  /** Tell the pod running this attempt to abort it (answer of its next heartbeat). */
  | { type: "cancelAttempt"; pod: string; attempt: number }
  /** A Running call the dispatcher does not know (operator restart): watch its pod. */
  | { type: "track"; pod: string; attempt: number }
  | { type: "event"; eventType: "Normal" | "Warning"; reason: string; message: string }
  /** Write a waiting phase only if the call is still waiting after the configured delay. */
  | { type: "markWaiting"; phase: "Blocked" | "Queued" | "Running" }
  /** Read the list output of `from` (a blob) so that a later decision can expand it. */
  | { type: "loadItems"; from: string }
  /** Delete the request: the root (children go with it by ownerReference) and its blobs. */
  | { type: "deleteRequest" }
  | { type: "requeueAfter"; ms: number };

export type PodState = "alive" | "lost" | "gone" | "untracked";
export type ItemsResult = { items: ValueRef[] } | { error: string } | { loading: true };

/** What a decision may read besides the call itself. Names are in the call's namespace. */
export interface CallView {
  call(name: string): Call | undefined;
  children(parent: string): Call[];
  /** Counts over `parent`'s children (cheap: no list). */
  childStats(parent: string): { count: number; succeeded: number; failed: string | undefined };
  requestError(request: string): string | undefined;
  policy(call: Call): CallPolicy;
  /** Standing of the pod running `call`'s attempt. */
  pod(pod: string, call: string, attempt: number): PodState;
  /** The items held by the (Succeeded) output of `name`, for `itemsFrom`. */
  items(name: string): ItemsResult;
  ttlSecondsAfterFinished(call: Call): number | undefined;
  timeoutGraceMs: number;
  infrastructureRetries: number;
}
