// Watches of the worker: each id gets exactly one `resolved` once its call is final. Ids are
// long-polled on POST /wait (mode any) in groups: the watches of one request that arrive together
// (same tick) form a group (the operator waits on one request at a time), which polls again for
// its ids not yet final until none is left. Groups never
// abort one another, so no answer is lost and a new watch never waits for an older poll.
import type { Logger, Outcome } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import { internalError } from "./translate.js";

const MAX_IDS_PER_WAIT = 10_000;

export type Deliver = (outcome: Outcome) => void;

export class Waiter {
  private readonly polling = new Set<string>();
  /** Outcomes known without asking (children that already existed, failed creations). */
  private readonly known = new Map<string, Outcome>();
  /** Ids to poll, by request, collected during the current tick. */
  private batch = new Map<string, string[]>();
  private scheduled = false;
  private closed = false;
  readonly stats = { polls: 0 };

  constructor(
    private readonly api: RuntimeApi,
    private readonly deliver: Deliver,
    private readonly waitMs: () => number,
    private readonly log: Logger,
  ) {}

  /** Outcomes that later watches of these ids get at once. */
  prime(outcomes: Outcome[]): void {
    for (const o of outcomes) this.known.set(o.call, o);
  }

  /** A call that could not be created: its watches fail with InternalError. */
  failCreation(id: string, fn: string | undefined, message: string): void {
    const e = internalError(id, fn, message);
    this.known.set(id, {
      call: id,
      phase: "Failed",
      error: { type: e.type, message: e.message, reason: "internal" },
    });
  }

  /** `request`: the request of the watching call (every id watched belongs to it). */
  watch(ids: string[], request: string): void {
    if (this.closed) return;
    for (const id of ids) {
      const o = this.known.get(id);
      if (o) {
        this.known.delete(id);
        this.deliver(o);
      } else if (!this.polling.has(id)) {
        this.polling.add(id);
        const list = this.batch.get(request);
        if (list) list.push(id);
        else this.batch.set(request, [id]);
      }
    }
    if (this.batch.size && !this.scheduled) {
      this.scheduled = true;
      // Same-tick watches (one socket read) share a poll; no timer, so no delay.
      queueMicrotask(() => {
        this.scheduled = false;
        const batch = this.batch;
        this.batch = new Map();
        for (const ids of batch.values()) {
          for (let i = 0; i < ids.length; i += MAX_IDS_PER_WAIT)
            void this.group(new Set(ids.slice(i, i + MAX_IDS_PER_WAIT)));
        }
      });
    }
  }

  /** Stops every poll; nothing is delivered after this (the worker connection is gone). */
  close(): void {
    this.closed = true;
    this.polling.clear();
    this.known.clear();
  }

  private async group(ids: Set<string>): Promise<void> {
    while (ids.size && !this.closed) {
      this.stats.polls++;
      const r = await this.api.wait({ calls: [...ids], mode: "any", waitMs: this.waitMs() });
      if (this.closed) return;
      if (!r.ok) {
        if (r.verdict === "closed") return;
        this.log.error("waiting for calls failed", {
          calls: ids.size,
          status: r.status,
          code: r.code,
          message: r.message,
        });
        for (const id of ids) {
          this.polling.delete(id);
          const e = internalError(id, undefined, `waiting for call ${id} failed: ${r.code}: ${r.message}`);
          this.deliver({
            call: id,
            phase: "Failed",
            error: { type: e.type, message: e.message, reason: "internal" },
          });
        }
        return;
      }
      for (const o of r.body.outcomes) {
        if (!ids.delete(o.call)) continue;
        this.polling.delete(o.call);
        this.deliver(o);
      }
    }
  }
}
