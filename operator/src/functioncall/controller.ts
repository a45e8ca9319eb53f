// The FunctionCall reconciler: read the graph, decideCall, apply the actions. Writes to a call
// happen under its key's lock, so reports from pods and reconciles never interleave on one call.
import type { Clock, EventRecorder, ObjectKey, ReconcileResult, Reconciler, WorkQueue } from "../kube/types.js";
import type { Logger } from "../../../protocol/index.js";
import { type BlobStore, requestPrefix } from "../runtime-api/blobstore.js";
import type { Action, CallView, ItemsResult } from "./actions.js";
import {
  type Call,
  callKey,
  isCollection,
  isTerminal,
  keyOfCall,
  nameOf,
  namespaceOf,
  phaseOf,
  requestOf,
} from "./calls.js";
import type { EngineConfig } from "./config.js";
import { decideCall } from "./decide-call.js";
import type { Dispatcher } from "./dispatcher.js";
import type { CallGraph } from "./graph.js";
import { readiness } from "./inputs.js";
import { type CallStore, mapLimit } from "./store.js";
import { itemsOfDocument, storeOutput } from "./values.js";
import { type MarkTarget, WaitingMarker } from "./waiting-marker.js";

export interface ControllerDeps {
  graph: CallGraph;
  store: CallStore;
  dispatcher: Dispatcher;
  queue: WorkQueue;
  events: EventRecorder;
  blobs: BlobStore;
  clock: Clock;
  config: EngineConfig;
  view: (namespace: string) => CallView;
  itemsCache: Map<string, ItemsResult>;
  logger?: Logger;
}

/** Concurrent creates of one expansion (a map of 2,000 items is 2,000 creates). */
const CREATE_CONCURRENCY = 64;

export class CallController {
  readonly marker: WaitingMarker;

  constructor(private readonly d: ControllerDeps) {
    this.marker = new WaitingMarker(d.config.waitingPhaseWriteAfterMs, d.clock, (t) => this.markWaiting(t));
  }

  readonly reconcile: Reconciler = (key: ObjectKey) =>
    this.d.store.withLock(key, async (): Promise<ReconcileResult | void> => {
      const call = this.d.graph.getKey(key);
      if (!call) return;
      const actions = decideCall(call, this.d.view(namespaceOf(call)), this.d.clock.now());
      const requeueAfterMs = await this.apply(call, actions);
      if (requeueAfterMs !== undefined) return { requeueAfterMs };
    });

  /** Performs actions in order; call with the call's key lock held. Returns a requeue delay. */
  async apply(call: Call, actions: Action[]): Promise<number | undefined> {
    const { dispatcher, store } = this.d;
    const ns = namespaceOf(call);
    const name = nameOf(call);
    const key = keyOfCall(call);
    let requeue: number | undefined;
    for (const a of actions) {
      switch (a.type) {
        case "status": {
          const patch = { ...a.patch };
          if (a.output)
            patch.output = await storeOutput(
              a.output,
              this.d.blobs,
              ns,
              requestOf(call),
              this.d.config.inlineValueLimitBytes,
            );
          const out = await store.patchStatus(call, patch);
          if (out) call = out;
          break;
        }
        case "create":
          await mapLimit(a.calls, CREATE_CONCURRENCY, (c) => store.create(c));
          break;
        case "enqueue":
          dispatcher.enqueue(call, a.notBefore);
          if (phaseOf(call) !== "Queued") this.marker.schedule({ key, phase: "Queued" });
          break;
        case "dequeue":
          dispatcher.dequeue(ns, name, call.spec.application, call.spec.function);
          break;
        case "cancelAttempt":
          dispatcher.pods.cancel(ns, a.pod, name);
          break;
        case "track":
          dispatcher.pods.track(call, a.pod, a.attempt);
          break;
        case "event":
          this.d.events.record(call, a.eventType, a.reason, a.message);
          break;
        case "markWaiting":
          if (phaseOf(call) !== a.phase) this.marker.schedule({ key, phase: a.phase });
          break;
        case "loadItems":
          void this.loadItems(ns, a.from, key);
          break;
        case "deleteRequest":
          await store.delete(call);
          await this.d.blobs.deletePrefix(requestPrefix(ns, name));
          break;
        case "requeueAfter":
          requeue = requeue === undefined ? a.ms : Math.min(requeue, a.ms);
          break;
      }
    }
    return requeue;
  }

  private async loadItems(ns: string, from: string, waiter: string): Promise<void> {
    const k = callKey(ns, from);
    const ref = this.d.graph.get(ns, from)?.status?.output?.blob;
    if (ref === undefined) return;
    try {
      const bytes = await this.d.blobs.read(ref);
      this.d.itemsCache.set(k, bytes ? itemsOfDocument(bytes) : { error: `its output blob ${ref} is missing` });
    } catch (err) {
      this.d.logger?.warn("reading a list output failed", { call: k, err });
      this.d.queue.addAfter(waiter, 1000);
      return;
    }
    this.d.queue.add(waiter);
  }

  /** The deferred write of a waiting phase, if the call still waits in it. */
  private markWaiting(t: MarkTarget): Promise<void> {
    return this.d.store.withLock(t.key, async () => {
      const cur = this.d.graph.getKey(t.key);
      if (!cur || isTerminal(cur)) return;
      const p = phaseOf(cur);
      const ns = namespaceOf(cur);
      const stillWaiting = (): boolean => {
        if (t.phase === "Queued") return (p === "Pending" || p === "Blocked") && this.d.dispatcher.isQueued(cur);
        if (t.phase === "Running") return (p === "Pending" || p === "Blocked") && isCollection(cur);
        return (
          p === "Pending" &&
          !this.d.dispatcher.isQueued(cur) &&
          (isCollection(cur) || !readiness(cur, (n) => this.d.graph.get(ns, n)).ready)
        );
      };
      const ok = stillWaiting();
      if (!ok) return;
      const patch: Record<string, unknown> = { phase: t.phase };
      if (t.phase === "Queued" && cur.status?.queuedTime === undefined)
        patch.queuedTime = new Date(this.d.clock.now()).toISOString();
      await this.d.store.patchStatus(cur, patch);
    });
  }
}
