// The attempts this pod holds, from the lease until the operator has their outcome: the worker
// slots they use, the order of the work done for each (Serial), their progress and user metrics.
import { rmSync } from "node:fs";
import type { Assignment, Logger } from "../../../protocol/index.js";
import { type Attempt, ProgressGate, SeqFinder, Serial, attemptKey } from "./attempts.js";
import type { Notifier } from "./notifier.js";

export interface ProgressBody {
  current: number;
  total: number;
  message?: string;
}

export interface AttemptBookOptions {
  progressIntervalMs: number;
  /** Sends a (coalesced) progress update of a call to the operator. */
  sendProgress: (call: string, body: ProgressBody) => void;
  /** Notified whenever an attempt frees its worker slot. */
  changed: Notifier;
  log: Logger;
  now?: () => number;
}

export class AttemptBook {
  private readonly attempts = new Map<string, Attempt>();
  /** Work of one attempt (its messages, then its report) runs in order. */
  readonly serial: Serial;
  readonly progress: ProgressGate<ProgressBody>;
  /** User metrics of every attempt (the runtime API has no route for them): logged. */
  readonly metrics = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly opts: AttemptBookOptions) {
    this.now = opts.now ?? Date.now;
    this.serial = new Serial((key, e) =>
      opts.log.error("relaying a worker message failed", { attempt: key, error: e }),
    );
    this.progress = new ProgressGate(opts.progressIntervalMs, opts.sendProgress, this.now);
  }

  /** Attempts the worker is running (capacity in use). */
  get running(): number {
    let n = 0;
    for (const a of this.attempts.values()) if (a.state !== "reporting") n++;
    return n;
  }

  get(call: string, attempt: number): Attempt | undefined {
    return this.attempts.get(attemptKey(call, attempt));
  }

  /** A snapshot, safe to change the book while iterating it. */
  all(): Attempt[] {
    return [...this.attempts.values()];
  }

  /** A newly leased attempt; undefined if this pod already has it (an answer delivered twice). */
  open(a: Assignment): Attempt | undefined {
    const key = attemptKey(a.call, a.attempt);
    if (this.attempts.has(key)) return undefined;
    const att: Attempt = {
      key,
      call: a.call,
      attempt: a.attempt,
      function: a.function,
      request: a.request,
      timeoutSeconds: a.timeoutSeconds,
      state: "running",
      startedAt: this.now(),
      seq: new SeqFinder(a.request, a.call),
      metrics: new Map(),
    };
    this.attempts.set(key, att);
    return att;
  }

  /** The attempt no longer uses a worker slot: lease more at once. */
  finish(att: Attempt): void {
    if (att.timer) clearTimeout(att.timer);
    att.state = "reporting";
    this.progress.finish(att.call);
    // The worker reads inputs before it runs, so they are no longer needed, read or not.
    for (const path of att.spills?.splice(0) ?? []) rmSync(path, { force: true });
    if (att.metrics.size)
      this.opts.log.info("metrics of the attempt", { attempt: att.key, metrics: Object.fromEntries(att.metrics) });
    this.opts.changed.notify();
  }

  /** Over without a report (cancelled at the operator's request). */
  drop(att: Attempt): void {
    this.finish(att);
    this.attempts.delete(att.key);
  }

  /** The operator has the outcome (or will never take it). */
  forget(att: Attempt): void {
    this.attempts.delete(att.key);
  }

  addMetric(att: Attempt, kind: string, name: string, value: number): void {
    const key = `${kind}:${name}`;
    att.metrics.set(key, (att.metrics.get(key) ?? 0) + value);
    this.metrics.set(key, (this.metrics.get(key) ?? 0) + value);
  }
}
