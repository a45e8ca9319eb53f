// Keyed work queue with the controller-runtime contract:
// - a key waits at most once (deduplicated while queued);
// - a key is never reconciled by two workers at once; a key added while it runs is queued
//   again when that run ends;
// - addAfter keeps one timer per key, the earliest deadline wins;
// - a reconcile that throws is retried with per-key exponential backoff, reset by success;
// - shutdown() stops taking work and waits for running reconciles.
// Dispatch is a microtask away from add(): no polling, no timer hop when a worker is free.
import type { ObjectKey, Reconciler, WorkQueue } from "./types.js";
import { Deadlines } from "./deadlines.js";
import { type Logger, silentLogger } from "../../../protocol/index.js";

/** Longest run of reconciles started without letting the event loop take I/O and timers. */
const PUMP_SLICE_MS = 20;

/** Defaults, documented here once. */
export const WORKQUEUE_DEFAULTS = {
  /** First retry delay after a failed reconcile. */
  baseDelayMs: 5,
  /** Retry delay cap. */
  maxDelayMs: 60_000,
} as const;

export interface WorkQueueHooks {
  /** add → reconcile start, for the queue-wait histogram. */
  onStart?(key: ObjectKey, waitedMs: number): void;
  /** reconcile duration and outcome. */
  onDone?(key: ObjectKey, durationMs: number, error: unknown | undefined): void;
}

export interface WorkQueueOptions {
  name?: string;
  baseDelayMs?: number;
  maxDelayMs?: number;
  log?: Logger;
  hooks?: WorkQueueHooks;
  /**
   * Only reconcile results set this queue's timers (no addAfter from elsewhere), so a reconcile that
   * succeeds without asking for a requeue drops the key's timer: its decision replaces the earlier
   * one. Without this a finished call kept its attempt-timeout timer until it fired (a 100,000-item
   * map held 100,000 timers, ~20 MiB, for the timeout's length).
   */
  resultsOwnTimers?: boolean;
  /** Monotonic ms clock; injectable for tests. */
  now?: () => number;
}

export interface WorkQueueStats {
  depth: number;
  running: number;
  delayed: number;
  adds: number;
  reconciles: number;
  errors: number;
}

export function backoffDelay(failures: number, baseMs: number, maxMs: number): number {
  if (failures <= 0) return 0;
  // 2^(n-1) overflows to Infinity for big n, which Math.min caps.
  return Math.min(maxMs, baseMs * 2 ** (failures - 1));
}

export class KeyedWorkQueue implements WorkQueue {
  private readonly ring: ObjectKey[] = []; // FIFO; `head` avoids O(n) shift
  private head = 0;
  private readonly queuedAt = new Map<ObjectKey, number>(); // queued (not running) → add time
  private readonly running = new Set<ObjectKey>();
  private readonly dirty = new Map<ObjectKey, number>(); // added while running → add time
  private readonly timers: Deadlines<ObjectKey>;
  private readonly failures = new Map<ObjectKey, number>();
  private readonly idleWaiters: (() => void)[] = [];
  private reconciler: Reconciler | undefined;
  private workers = 0;
  private pumpScheduled = false;
  /** When the current run of pumps without a turn of the event loop began. */
  private sliceStart: number | undefined;
  private stopped = false;
  private readonly opts: Required<Omit<WorkQueueOptions, "hooks" | "name" | "resultsOwnTimers">> & {
    hooks: WorkQueueHooks;
    name: string;
    resultsOwnTimers: boolean;
  };
  private readonly counters = { adds: 0, reconciles: 0, errors: 0 };

  constructor(opts: WorkQueueOptions = {}) {
    this.opts = {
      name: opts.name ?? "queue",
      baseDelayMs: opts.baseDelayMs ?? WORKQUEUE_DEFAULTS.baseDelayMs,
      maxDelayMs: opts.maxDelayMs ?? WORKQUEUE_DEFAULTS.maxDelayMs,
      log: opts.log ?? silentLogger,
      hooks: opts.hooks ?? {},
      resultsOwnTimers: opts.resultsOwnTimers ?? false,
      now: opts.now ?? (() => performance.now()),
    };
    this.timers = new Deadlines(this.opts.now, (key) => this.add(key));
    if (!(this.opts.baseDelayMs > 0)) throw new Error("workqueue baseDelayMs: must be > 0");
    if (!(this.opts.maxDelayMs >= this.opts.baseDelayMs))
      throw new Error("workqueue maxDelayMs: must be >= baseDelayMs");
  }

  add(key: ObjectKey): void {
    if (this.stopped) return;
    this.counters.adds++;
    if (this.running.has(key)) {
      if (!this.dirty.has(key)) this.dirty.set(key, this.opts.now());
      return;
    }
    if (this.queuedAt.has(key)) return;
    this.queuedAt.set(key, this.opts.now());
    this.ring.push(key);
    this.schedulePump();
  }

  addAfter(key: ObjectKey, delayMs: number): void {
    if (this.stopped) return;
    if (!(delayMs > 0)) return this.add(key);
    this.timers.setEarliest(key, this.opts.now() + delayMs); // an earlier deadline wins
  }

  run(reconciler: Reconciler, workers: number): void {
    if (this.reconciler) throw new Error(`workqueue ${this.opts.name}: run() called twice`);
    if (!Number.isInteger(workers) || workers < 1) throw new Error("workqueue workers: must be an integer >= 1");
    this.reconciler = reconciler;
    this.workers = workers;
    this.schedulePump();
  }

  length(): number {
    return this.queuedAt.size;
  }

  stats(): WorkQueueStats {
    return {
      depth: this.queuedAt.size,
      running: this.running.size,
      delayed: this.timers.size,
      ...this.counters,
    };
  }

  /** Consecutive failures of `key` (0 after a success). */
  failureCount(key: ObjectKey): number {
    return this.failures.get(key) ?? 0;
  }

  /** Stop taking work, drop queued and delayed keys, wait for running reconciles. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    this.timers.clear();
    this.ring.length = 0;
    this.head = 0;
    this.queuedAt.clear();
    this.dirty.clear();
    if (this.running.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Metrics hooks must never wedge a key in `running`. */
  private hook(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.opts.log.error("work queue hook threw", { queue: this.opts.name, err: e });
    }
  }

  private dropTimer(key: ObjectKey): void {
    this.timers.delete(key);
  }

  private schedulePump(): void {
    if (this.pumpScheduled || !this.reconciler) return;
    this.pumpScheduled = true;
    const run = () => {
      this.pumpScheduled = false;
      this.pump();
    };
    // Reconciles that finish without I/O chain through microtasks, which never let the event loop
    // in: 100,000 map items decided back to back starved the Lease renew past its deadline. After
    // a slice of work the next pump waits for the loop's check phase, behind pending I/O.
    const now = performance.now();
    if (this.sliceStart === undefined) {
      this.sliceStart = now;
      setImmediate(() => (this.sliceStart = undefined));
    }
    if (now - this.sliceStart > PUMP_SLICE_MS) setImmediate(run);
    else queueMicrotask(run);
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.workers && this.head < this.ring.length) {
      const key = this.ring[this.head++]!;
      const addedAt = this.queuedAt.get(key);
      if (addedAt === undefined) continue; // dropped by shutdown
      this.queuedAt.delete(key);
      this.running.add(key);
      void this.process(key, addedAt);
    }
    if (this.head > 1024 && this.head * 2 > this.ring.length) {
      this.ring.splice(0, this.head);
      this.head = 0;
    }
  }

  private async process(key: ObjectKey, addedAt: number): Promise<void> {
    const start = this.opts.now();
    this.hook(() => this.opts.hooks.onStart?.(key, start - addedAt));
    this.counters.reconciles++;
    let error: unknown;
    let requeueAfterMs: number | undefined;
    try {
      const res = await this.reconciler!(key);
      requeueAfterMs = res?.requeueAfterMs;
    } catch (e) {
      error = e ?? new Error("reconcile threw a nullish value");
    }
    this.hook(() => this.opts.hooks.onDone?.(key, this.opts.now() - start, error));
    this.running.delete(key);
    if (error !== undefined) {
      this.counters.errors++;
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = backoffDelay(n, this.opts.baseDelayMs, this.opts.maxDelayMs);
      this.opts.log.warn("reconcile failed", { queue: this.opts.name, key, failures: n, retryInMs: delay, err: error });
      this.addAfter(key, delay);
    } else {
      this.failures.delete(key);
      if (requeueAfterMs !== undefined && requeueAfterMs >= 0) this.addAfter(key, requeueAfterMs);
      else if (this.opts.resultsOwnTimers) this.dropTimer(key);
    }
    const dirtyAt = this.dirty.get(key);
    if (dirtyAt !== undefined) {
      this.dirty.delete(key);
      if (!this.stopped && !this.queuedAt.has(key)) {
        // Keep the original add time so the wait metric includes the time spent behind the run.
        this.queuedAt.set(key, dirtyAt);
        this.ring.push(key);
      }
    }
    if (this.stopped && this.running.size === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
    }
    this.schedulePump();
  }
}
