// The pod's heartbeat to the operator: the attempts it holds (so the operator knows they are
// alive), the last lease answer they include, and whether it is draining; the answer names calls
// to cancel.
import type { Logger } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import type { AttemptBook } from "./attempt-book.js";
import type { Dispatcher } from "./dispatch.js";
import type { PodState } from "./pod-state.js";

/** The runtime API takes at most this many calls per heartbeat. */
const MAX_CALLS = 1000;

export interface OperatorHeartbeatDeps {
  state: PodState;
  api: Pick<RuntimeApi, "heartbeat">;
  book: AttemptBook;
  dispatcher: Pick<Dispatcher, "cancel">;
  log: Logger;
}

export class OperatorHeartbeat {
  private looping = false;

  constructor(private readonly d: OperatorHeartbeatDeps) {}

  /** Starts beating every interval (the operator's, from registration) until stop. */
  start(): void {
    if (!this.looping) void this.loop();
  }

  private async loop(): Promise<void> {
    this.looping = true;
    const s = this.d.state;
    while (!s.stopped) {
      await s.stopping.wait(s.settings.heartbeatIntervalMs);
      if (s.stopped) break;
      await this.beat();
    }
    this.looping = false;
  }

  /** One heartbeat now: the book and the lease answer it holds, read together. */
  async beat(): Promise<void> {
    const calls = this.d.book
      .all()
      .slice(0, MAX_CALLS)
      .map((a) => ({ call: a.call, attempt: a.attempt }));
    // Null until an answer is taken: still not an older sidecar, whose calls are judged by age.
    const r = await this.d.api.heartbeat({ calls, draining: this.d.state.draining, lease: this.d.state.lastLease });
    if (!r.ok) {
      if (r.verdict !== "closed")
        this.d.log.warn("heartbeat not acknowledged", { status: r.status, code: r.code, message: r.message });
      return;
    }
    // A cancel answers the attempts this heartbeat named, never one leased since (e.g. the retry of
    // a crashed attempt still being reported, whose call the operator names as stale).
    const named = new Map<string, Set<number>>();
    for (const c of calls) named.set(c.call, (named.get(c.call) ?? new Set()).add(c.attempt));
    for (const call of r.body.cancel) this.d.dispatcher.cancel(call, named.get(call) ?? new Set());
  }
}
