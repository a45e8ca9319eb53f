// What the dispatcher knows of each function pod: identity, liveness (heartbeat watchdog), the
// calls it runs, cancellations to hand it, its parked lease.
import type { DiscoveredFunction } from "../application/types.js";
import type { Assignment } from "../../../protocol/index.js";

export interface PodIdentity {
  namespace: string;
  pod: string;
  application: string;
  function: string;
}

export interface RunningEntry {
  attempt: number;
  assignedAt: number;
  /** Absent from a heartbeat sent well after it was assigned: the sidecar lost it. */
  lost: boolean;
}

export interface LeaseWaiter {
  pod: PodRecord;
  capacity: number;
  deadline: number;
  timer: NodeJS.Timeout | undefined;
  resolve: (a: Assignment[]) => void;
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
  lastBusyAt?: number;
  functions?: DiscoveredFunction[];
  waiter?: LeaseWaiter;
  watchdog?: NodeJS.Timeout;
}

export const podKey = (namespace: string, pod: string): string => `${namespace}/${pod}`;
export const fnKey = (namespace: string, app: string, fn: string): string => `${namespace}/${app}/${fn}`;
