// Work for the worker's free slots: a long-polled lease while the worker is registered, each
// assignment opened in the book and dispatched. Calls leased while no worker is connected (it was
// just lost) wait a while for the restarted one instead of spending an infrastructure retry.
import type { Assignment, Logger } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import type { AttemptBook } from "./attempt-book.js";
import { type Attempt, attemptKey } from "./attempts.js";
import { type Dispatcher, POD_SHUTDOWN } from "./dispatch.js";
import type { Link, PodState } from "./pod-state.js";
import type { Reporter } from "./reporter.js";

export interface LeaserDeps {
  state: PodState;
  api: Pick<RuntimeApi, "lease">;
  book: AttemptBook;
  dispatcher: Pick<Dispatcher, "dispatch">;
  reporter: Pick<Reporter, "fail">;
  /** Calls leased while no worker is connected wait this long for one. */
  workerReturnMs: number;
  log: Logger;
  /** The operator refused a lease (e.g. it restarted and forgot the pod): register again. */
  reregister: () => void;
}

type LeaseOutcome = "leased" | "refused" | "closed";

export class Leaser {
  private looping = false;
  private readonly held: { att: Attempt; a: Assignment }[] = [];
  private holdTimer: NodeJS.Timeout | undefined;

  constructor(private readonly d: LeaserDeps) {}

  /** Starts the lease loop unless it runs; it ends at drain or stop. */
  start(): void {
    if (!this.looping) void this.loop();
  }

  private async loop(): Promise<void> {
    this.looping = true;
    const s = this.d.state;
    let refusals = 0;
    while (!s.draining && !s.stopped) {
      const free = s.capacity - this.d.book.running;
      if (!s.link?.registered || free <= 0) {
        await s.changed.wait();
        continue;
      }
      const outcome = await this.lease(free);
      if (outcome === "closed") break;
      if (outcome === "leased") refusals = 0;
      else {
        await s.stopping.wait(Math.min(30_000, 500 * 2 ** refusals++));
        this.d.reregister();
      }
    }
    this.looping = false;
  }

  private async lease(free: number): Promise<LeaseOutcome> {
    const s = this.d.state;
    s.leaseInFlight = true;
    const r = await this.d.api.lease({ capacity: free, waitMs: s.settings.leaseWaitMs });
    s.leaseInFlight = false;
    s.changed.notify(); // a drain may be waiting for this lease
    if (!r.ok) {
      if (r.verdict === "closed") return "closed";
      this.d.log.error("lease refused", { status: r.status, code: r.code, message: r.message });
      return "refused";
    }
    for (const a of r.body.assignments) this.begin(a);
    // Only now: a heartbeat built before this point does not hold these assignments yet.
    const { epoch, seq } = r.body;
    s.lastLease = epoch !== undefined && seq !== undefined ? { epoch, seq } : null;
    s.changed.notify();
    return "leased";
  }

  /** A leased attempt: to the worker, held for a returning one, or given back when draining. */
  begin(a: Assignment): void {
    const att = this.d.book.open(a);
    if (!att) {
      // Delivered twice (an answer lost and re-sent): it runs once.
      this.d.log.warn("ignoring an assignment this pod already has", { attempt: attemptKey(a.call, a.attempt) });
      return;
    }
    if (this.d.state.draining) return this.d.reporter.fail(att, POD_SHUTDOWN, "infrastructure");
    const link = this.d.state.link;
    if (link) return this.d.dispatcher.dispatch(att, a, link);
    // A lease answered just after the worker was lost: keep the call for the restarted worker
    // rather than spend one of its infrastructure retries.
    this.held.push({ att, a });
    this.holdTimer ??= setTimeout(() => this.expireHeld("no worker connected in time"), this.d.workerReturnMs);
  }

  /** A worker connected: it gets the calls held for it. */
  release(link: Link): void {
    this.clearHoldTimer();
    for (const { att, a } of this.held.splice(0)) if (att.state === "running") this.d.dispatcher.dispatch(att, a, link);
  }

  /** Gives the held calls back as infrastructure failures. */
  expireHeld(why: string): void {
    this.clearHoldTimer();
    for (const { att } of this.held.splice(0)) {
      this.d.reporter.fail(att, { type: "WorkerUnavailable", message: why }, "infrastructure");
    }
  }

  /**
   * Draining: a new lease answers the parked one at once (the operator keeps one lease per pod);
   * capacity 0 takes nothing new, and anything it returns is given back as infrastructure failures.
   * Its answer may overtake the parked one's, so heartbeats do not name it (`lastLease`).
   */
  endParkedLease(): void {
    if (!this.d.state.leaseInFlight) return;
    void this.d.api.lease({ capacity: 0, waitMs: 0 }, 2).then((r) => {
      if (r.ok) for (const a of r.body.assignments) this.begin(a);
    });
  }

  private clearHoldTimer(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }
}
