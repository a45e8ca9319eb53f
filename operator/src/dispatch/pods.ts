// What the dispatcher knows of calls and pods, and what it needs from the FunctionCall side. The
// dispatcher never reads a FunctionCall: it queues names, and asks `start` to persist an
// assignment and `runningAttempt` whether a pod's report of a call is current.
import type { Assignment } from "../../../protocol/index.js";
import type { DiscoveredFunction } from "../application/index.js";

export interface PodIdentity {
  namespace: string;
  pod: string;
  application: string;
  function: string;
}

/** A call as the dispatcher sees it: a name on the ready queue of its function. */
export interface CallRef {
  namespace: string;
  name: string;
  application: string;
  function: string;
}

/** Standing of the pod that runs an attempt. */
export type PodState = "alive" | "lost" | "gone" | "untracked";

export interface DispatchConfig {
  /** A pod silent this long has lost its running calls. */
  heartbeatTimeoutMs: number;
  /**
   * What sidecars are told at register. Also the time rule: a call missing from a heartbeat two
   * intervals after it was assigned is lost, when the heartbeat cannot tell (README, "Lost calls").
   */
  heartbeatIntervalMs: number;
}

/**
 * What persisting the assignment of a queued call came to: the assignment to hand the pod, a time
 * before which the call may not start (it goes back to the queue until then), or undefined when
 * the call is no longer dispatchable (finished, cancelled, deleted, not ready).
 */
export type StartResult = { assignment: Assignment } | { notBefore: number } | undefined;

/** Persists phase Running for `name` on `pod` (under the call's lock) and builds its assignment. */
export type StartCall = (pod: PodIdentity, name: string, readyAt: number) => Promise<StartResult>;

/** The attempt of a call that is Running (as persisted) and its pod; undefined when it is not running. */
export type RunningAttempt = (namespace: string, name: string) => { pod: string; attempt: number } | undefined;

export interface RunningEntry {
  attempt: number;
  assignedAt: number;
  /** The lease answer (of this operator) that delivered it; undefined until one did. */
  seq?: number;
  /** Delivered by an earlier operator (found at a restart): only its age tells whether it is lost. */
  tracked: boolean;
  /** Absent from a heartbeat the sidecar built after it had it: the sidecar lost it. */
  lost: boolean;
}

/** A lease answer: its assignments, stamped with this operator's epoch and the pod's lease seq. */
export interface LeaseAnswer {
  assignments: Assignment[];
  epoch: string;
  seq: number;
}

/** The last lease answer a heartbeat's sidecar took; null: none yet (absent from older sidecars). */
export type HeartbeatLease = { epoch: string; seq: number } | null;

export interface LeaseWaiter {
  pod: PodRecord;
  capacity: number;
  deadline: number;
  timer: NodeJS.Timeout | undefined;
  resolve: (a: LeaseAnswer) => void;
  done: boolean;
}

export interface PodRecord {
  id: PodIdentity;
  registered: boolean;
  state: "alive" | "lost" | "gone";
  draining: boolean;
  running: Map<string, RunningEntry>;
  cancels: Set<string>;
  /** Assignments persisted for a lease that was superseded before it could answer. */
  undelivered: Assignment[];
  /** Seq of the last lease answer with assignments. */
  leaseSeq: number;
  lastBusyAt?: number;
  functions?: DiscoveredFunction[];
  waiter?: LeaseWaiter;
  watchdog?: NodeJS.Timeout;
}

export const podKey = (namespace: string, pod: string): string => `${namespace}/${pod}`;
export const fnKey = (namespace: string, app: string, fn: string): string => `${namespace}/${app}/${fn}`;
/** The work-queue key of a call ("namespace/name"). */
export const callKey = (namespace: string, name: string): string => `${namespace}/${name}`;
