// What the parts of the sidecar share: the worker link, the pod's capacity and the operator's
// settings, the drain and stop flags, and the wake-ups of its loops.
import type { LeaseStamp } from "../../../protocol/index.js";
import { Notifier } from "./notifier.js";
import type { Waiter } from "./waiter.js";
import type { Session } from "./worker-link.js";

/** One worker connection's state: its watches die with it. */
export interface Link {
  session: Session;
  waiter: Waiter;
  registered: boolean;
}

export class PodState {
  /** The welcomed worker connection, if any. */
  link: Link | undefined;
  /** Attempts the worker runs at once. */
  capacity = 1;
  /** From the operator's register answer. */
  settings = { heartbeatIntervalMs: 5_000, leaseWaitMs: 20_000 };
  draining = false;
  stopped = false;
  /** A lease long-poll is parked at the operator. */
  leaseInFlight = false;
  /**
   * The last lease answer whose assignments are in the book: heartbeats name it, so the operator
   * counts a call missing from them as lost only once the sidecar had it.
   */
  lastLease: LeaseStamp | null = null;
  /** Something a loop waits for changed: a slot freed, a registration, the link, a drain. */
  readonly changed = new Notifier();
  /** Fires at stop(): cuts every pause short. */
  readonly stopping = new Notifier();
}
