// Kubernetes Events (core/v1) for transitions a human should see, written off the caller's path.
// - record() never blocks and never throws: events go to a bounded queue drained by one writer;
//   when the queue is full new events are dropped and counted.
// - The same (object, type, reason, message) within the aggregation window bumps `count` and
//   `lastTimestamp` of the Event already written instead of creating another; repeats that
//   arrive while the first is still queued are folded into it before any write.
import * as os from "node:os";
import { isNotFound } from "./errors.js";
import { type Logger, silentLogger } from "../../../protocol/index.js";
import type { EventRecorder, KubeObject } from "./types.js";
import type { KubeObjectWriter } from "./writer.js";

/** Defaults, documented here once. */
export const EVENT_DEFAULTS = {
  aggregateWindowMs: 10 * 60_000,
  maxQueue: 1_000,
  /** Remembered (object, reason, message) tuples for aggregation (oldest forgotten first). */
  maxRemembered: 4_096,
  maxMessageLength: 1_024,
  component: "trellis-operator",
  reportingController: "trellis.dev/operator",
} as const;

export type EventWriter = Pick<KubeObjectWriter, "create" | "patch">;

export interface EventRecorderOptions {
  writer: EventWriter;
  component?: string;
  reportingController?: string;
  /** Defaults to the host name (the pod name in a cluster). */
  reportingInstance?: string;
  aggregateWindowMs?: number;
  maxQueue?: number;
  maxRemembered?: number;
  log?: Logger;
  now?: () => number;
}

export interface EventRecorderStats {
  recorded: number;
  created: number;
  patched: number;
  folded: number;
  dropped: number;
  failed: number;
}

interface Pending {
  involved: Record<string, string | undefined>;
  namespace: string;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
  count: number;
  first: number;
  last: number;
}

interface Sent {
  namespace: string;
  name: string;
  count: number;
  first: number;
  lastWrite: number;
}

/** Metadata time (seconds precision, RFC 3339). */
const metaTime = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z");

export class KubeEventRecorder implements EventRecorder {
  readonly stats: EventRecorderStats = { recorded: 0, created: 0, patched: 0, folded: 0, dropped: 0, failed: 0 };
  private readonly queue: string[] = [];
  private readonly pending = new Map<string, Pending>();
  private readonly sent = new Map<string, Sent>(); // insertion order = age, for trimming
  private draining: Promise<void> | undefined;
  private seq = 0;
  private readonly o: Required<EventRecorderOptions>;

  constructor(opts: EventRecorderOptions) {
    this.o = {
      component: EVENT_DEFAULTS.component,
      reportingController: EVENT_DEFAULTS.reportingController,
      reportingInstance: os.hostname(),
      aggregateWindowMs: EVENT_DEFAULTS.aggregateWindowMs,
      maxQueue: EVENT_DEFAULTS.maxQueue,
      maxRemembered: EVENT_DEFAULTS.maxRemembered,
      log: silentLogger,
      now: Date.now,
      ...opts,
    };
  }

  record(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void {
    this.stats.recorded++;
    const m = obj.metadata;
    if (!obj.kind || !obj.apiVersion || !m.name) {
      this.stats.dropped++;
      this.o.log.warn("event dropped: object lacks apiVersion, kind or name", { reason });
      return;
    }
    const msg =
      message.length > EVENT_DEFAULTS.maxMessageLength
        ? message.slice(0, EVENT_DEFAULTS.maxMessageLength - 1) + "…"
        : message;
    const key = [m.uid ?? `${m.namespace}/${obj.kind}/${m.name}`, type, reason, msg].join("\u0000");
    const now = this.o.now();
    const queued = this.pending.get(key);
    if (queued) {
      queued.count++;
      queued.last = now;
      this.stats.folded++;
      return;
    }
    if (this.queue.length >= this.o.maxQueue) {
      if (this.stats.dropped++ % 100 === 0)
        this.o.log.warn("event queue full, dropping events", { dropped: this.stats.dropped });
      return;
    }
    this.pending.set(key, {
      involved: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resourceVersion: m.resourceVersion,
      },
      namespace: m.namespace || "default",
      type,
      reason,
      message: msg,
      count: 1,
      first: now,
      last: now,
    });
    this.queue.push(key);
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
  }

  /** Resolves when everything queued so far has been written (or failed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    // Start on a later tick so that a burst of record() calls folds before the first write.
    await new Promise<void>((r) => setImmediate(r));
    for (let key = this.queue.shift(); key !== undefined; key = this.queue.shift()) {
      const p = this.pending.get(key)!;
      this.pending.delete(key);
      try {
        await this.write(key, p);
      } catch (e) {
        this.stats.failed++;
        this.o.log.warn("writing event failed", { reason: p.reason, object: p.involved.name, err: e });
      }
    }
  }

  private async write(key: string, p: Pending): Promise<void> {
    const prev = this.sent.get(key);
    if (prev && p.last - prev.lastWrite < this.o.aggregateWindowMs) {
      try {
        const count = prev.count + p.count;
        await this.o.writer.patch(
          { apiVersion: "v1", kind: "Event", namespace: prev.namespace, name: prev.name },
          { count, lastTimestamp: metaTime(p.last) },
        );
        this.stats.patched++;
        this.remember(key, { ...prev, count, lastWrite: p.last });
        return;
      } catch (e) {
        if (!isNotFound(e)) throw e; // the Event expired (its TTL): write a new one
      }
    }
    const name = `${p.involved.name!.slice(0, 200)}.${(p.first * 1000 + (this.seq++ % 1000)).toString(16)}`;
    await this.o.writer.create({
      apiVersion: "v1",
      kind: "Event",
      metadata: { name, namespace: p.namespace },
      involvedObject: p.involved,
      reason: p.reason,
      message: p.message,
      type: p.type,
      count: p.count,
      firstTimestamp: metaTime(p.first),
      lastTimestamp: metaTime(p.last),
      source: { component: this.o.component, host: this.o.reportingInstance },
      reportingComponent: this.o.reportingController,
      reportingInstance: this.o.reportingInstance,
    } as KubeObject);
    this.stats.created++;
    this.remember(key, { namespace: p.namespace, name, count: p.count, first: p.first, lastWrite: p.last });
  }

  private remember(key: string, s: Sent): void {
    this.sent.delete(key); // re-insert: most recent last
    this.sent.set(key, s);
    if (this.sent.size > this.o.maxRemembered) this.sent.delete(this.sent.keys().next().value!);
  }
}
