// The one apply step: performs what decisions asked for, in order. Writes are awaited (a status
// write that finds the call gone ends the list: the rest is moot); effects need no I/O and run at
// once, so a list of effects only (graph reactions) is applied before `effects` returns.
// Status writes happen under the call's lock (the caller holds it); creates need none.
import { type Logger, SHARD_ITEM_INLINE_BYTES } from "../../../protocol/index.js";
import { type BlobStore, requestPrefix } from "../blobs/index.js";
import type { Dispatcher } from "../dispatch/index.js";
import type { Clock, EventRecorder, WorkQueue } from "../kube/index.js";
import type { Action, Effect, ItemsResult, WaitingPhase, Write } from "./actions.js";
import {
  type Call,
  callKey,
  isStatusAssumed,
  keyOfCall,
  nameOf,
  namespaceOf,
  phaseOf,
  refOf,
  requestOf,
  shardOf,
} from "./calls.js";
import type { EngineConfig } from "./config.js";
import type { EngineHooks } from "./hooks.js";
import type { CallGraph } from "./graph.js";
import type { ProgressThrottle } from "./progress.js";
import { decideRefused, isRefusalPatch } from "./decide-refusal.js";
import { type CallStore, WriteRefused, mapLimit } from "./store.js";
import { itemsOfDocument, storeOutput } from "./values.js";
import type { Waiters } from "./waiters.js";
import type { WaitingMarker } from "./waiting-marker.js";

export interface ApplyDeps {
  graph: CallGraph;
  store: CallStore;
  dispatcher: Dispatcher;
  marker: WaitingMarker;
  queue: WorkQueue;
  events: EventRecorder;
  blobs: BlobStore;
  waiters: Waiters;
  progress: ProgressThrottle;
  /** List outputs read from blobs, by call key (for `itemsFrom`). */
  itemsCache: Map<string, ItemsResult>;
  config: Pick<EngineConfig, "inlineValueLimitBytes">;
  hooks?: EngineHooks;
  logger?: Logger;
  clock: Clock;
}

export interface ApplyResult {
  /** The call as last written; undefined when a status write found it gone. */
  call: Call | undefined;
  /** The smallest `requeueAfter` asked for. */
  requeueAfterMs?: number;
  /** Calls a `create` found existing (another writer made them first). */
  existing: Call[];
  /**
   * The API server refused a write for good (its message): the list stopped there. A refused
   * status write has already failed the call (the caller holds its lock); a refused create or
   * delete is the caller's to settle (children are created without the parent's lock).
   */
  refused?: string;
}

/** Concurrent creates of one expansion (2,000 futures are 2,000 creates). */
const CREATE_CONCURRENCY = 16;
/** Expansions larger than this create in the bulk lane (behind status writes); smaller ones, a
 * sync call's child or a few futures, are on a graph's critical path and go at once. */
const SMALL_EXPANSION = 4;

export class Applier {
  constructor(private readonly d: ApplyDeps) {}

  async apply(call: Call, actions: Action[]): Promise<ApplyResult> {
    const out: ApplyResult = { call, existing: [] };
    for (const a of actions) {
      if (a.type === "requeueAfter")
        out.requeueAfterMs = out.requeueAfterMs === undefined ? a.ms : Math.min(out.requeueAfterMs, a.ms);
      else if (isWrite(a)) {
        try {
          await this.write(out, a);
        } catch (err) {
          if (!(err instanceof WriteRefused)) throw err;
          out.refused = err.message;
          if (a.type === "status") await this.statusRefused(out, a, err.message);
          else if (a.type === "deleteRequest") this.event(call, "Warning", "ObjectRefused", err.message);
          break;
        }
        if (!out.call) break;
      } else this.effect(out.call!, a);
    }
    return out;
  }

  /**
   * A status write refused for good would be refused again: the call fails instead, naming the
   * write and the rule. If that failure is refused too, an Event is all that is left (no loop).
   */
  private async statusRefused(out: ApplyResult, w: Write & { type: "status" }, message: string): Promise<void> {
    const call = out.call!;
    if (isRefusalPatch(w.patch)) {
      this.d.logger?.warn("writing a refusal failure was refused too", { call: keyOfCall(call), message });
      this.event(call, "Warning", "ObjectRefused", message);
      return;
    }
    const done = await this.apply(call, decideRefused(call, message, this.d.clock.now()));
    out.call = done.call;
  }

  /** Performs effects at once (no I/O awaited). */
  effects(call: Call, effects: Effect[]): void {
    for (const e of effects) this.effect(call, e);
  }

  private async write(out: ApplyResult, w: Write): Promise<void> {
    const call = out.call!;
    const { store } = this.d;
    switch (w.type) {
      case "status": {
        const patch = { ...w.patch };
        if (w.output)
          patch.output = await storeOutput(
            w.output,
            this.d.blobs,
            namespaceOf(call),
            requestOf(call),
            // A shard holds hundreds of items: their larger outputs go to the blob store.
            shardOf(call) === undefined
              ? this.d.config.inlineValueLimitBytes
              : Math.min(SHARD_ITEM_INLINE_BYTES, this.d.config.inlineValueLimitBytes),
          );
        out.call = await store.patchStatus(call, patch);
        return;
      }
      case "create": {
        const create =
          w.calls.length > SMALL_EXPANSION
            ? (c: Call) => store.lanes.bulk(() => store.create(c))
            : (c: Call) => store.create(c);
        const made = await mapLimit(w.calls, CREATE_CONCURRENCY, create);
        for (const r of made) if (!r.created && r.call) out.existing.push(r.call);
        return;
      }
      case "deleteRequest":
        // Its blobs go when the graph sees the root disappear (deleteBlobs), however it was deleted.
        await store.delete(call);
        return;
      case "settle":
        if (await store.settle(call))
          this.d.hooks?.settled?.(namespaceOf(call), call.spec.application, call.spec.function);
        out.call = undefined;
        return;
    }
  }

  private effect(call: Call, e: Effect): void {
    const { dispatcher } = this.d;
    const ns = namespaceOf(call);
    const name = nameOf(call);
    switch (e.type) {
      case "enqueue":
        dispatcher.enqueue(refOf(call), e.notBefore);
        // A shard's item is not worth a write for waiting: readers see it Pending until it runs.
        if (phaseOf(call) !== "Queued" && shardOf(call) === undefined)
          this.d.marker.schedule({ key: keyOfCall(call), phase: "Queued" });
        return;
      case "dequeue":
        return dispatcher.dequeue(refOf(call));
      case "cancelAttempt":
        return dispatcher.pods.cancel(ns, e.pod, name);
      case "track":
        return dispatcher.pods.track(refOf(call), e.pod, e.attempt);
      case "assigned":
        dispatcher.pods.assigned(ns, e.pod, name, e.attempt);
        return this.d.hooks?.dispatched?.(ns, call.spec.application, call.spec.function, e.queuedMs);
      case "event":
        return this.event(call, e.eventType, e.reason, e.message);
      case "markWaiting":
        return this.markWaiting(call, e.phase);
      case "loadItems":
        return void this.loadItems(ns, e.from, keyOfCall(call));
      default:
        return this.graphEffect(call, e);
    }
  }

  /** A phase written later if the call still waits in it (or, created assigned, still runs). */
  private markWaiting(call: Call, phase: WaitingPhase): void {
    if ((phaseOf(call) !== phase || isStatusAssumed(call)) && shardOf(call) === undefined)
      this.d.marker.schedule({ key: keyOfCall(call), phase });
  }

  /** An Event on the call; a shard's item's go on its shard, naming the item. */
  private event(call: Call, type: "Normal" | "Warning", reason: string, message: string): void {
    const shard = shardOf(call);
    const on = shard === undefined ? undefined : this.d.graph.get(namespaceOf(call), shard);
    if (!on) return this.d.events.record(call, type, reason, message);
    this.d.events.record(on, type, reason, `item ${call.spec.sequence} (${nameOf(call)}): ${message}`);
  }

  /** Effects of graph reactions. */
  private graphEffect(call: Call, e: Effect): void {
    const ns = namespaceOf(call);
    const key = keyOfCall(call);
    switch (e.type) {
      case "reconcile":
        for (const n of e.names) this.d.queue.add(callKey(ns, n));
        return;
      case "release":
        return this.d.dispatcher.pods.release(ns, e.pod, nameOf(call));
      case "notifyWaiters":
        return this.d.waiters.notify(ns, nameOf(call));
      case "forgetProgress":
        return this.d.progress.forget(key);
      case "forgetItems":
        this.d.itemsCache.delete(key);
        return;
      case "finished":
        return this.d.hooks?.finished?.(ns, call.spec.application, call.spec.function, e.phase);
      case "deleteBlobs":
        void this.d.blobs
          .deletePrefix(requestPrefix(ns, nameOf(call)))
          .catch((err: unknown) => this.d.logger?.warn("deleting a request's blobs failed", { request: key, err }));
        return;
    }
  }

  private async loadItems(ns: string, from: string, waiter: string): Promise<void> {
    const k = callKey(ns, from);
    const ref = this.d.graph.get(ns, from)?.status?.output?.blob;
    if (ref === undefined) return;
    try {
      const bytes = await this.d.blobs.read(ref);
      this.d.itemsCache.set(k, bytes ? itemsOfDocument(bytes, ref) : { error: `its output blob ${ref} is missing` });
    } catch (err) {
      this.d.logger?.warn("reading a list output failed", { call: k, err });
      this.d.queue.addAfter(waiter, 1000);
      return;
    }
    this.d.queue.add(waiter);
  }
}

const WRITES: ReadonlySet<Action["type"]> = new Set(["status", "create", "deleteRequest", "settle"]);
const isWrite = (a: Action): a is Write => WRITES.has(a.type);
