// Ready queues ↔ pod leases. Matching is immediate on either side: a call arriving while a lease
// waits, or a lease arriving while calls wait. Before a lease is answered the assignment is
// persisted (phase Running, pod, attempts, startTime), so nothing runs unseen; then `{call}`
// inputs are resolved to outputs. Pods (liveness, heartbeats, running calls) are in PodRegistry.
import type { Backlog, DispatcherView, PodActivity } from "../application/types.js";
import type { Clock } from "../kube/types.js";
import type { Assignment } from "../../../protocol/index.js";
import {
  type Call,
  callKey,
  isCollection,
  isDeleting,
  isRoot,
  nameOf,
  namespaceOf,
  notBeforeOf,
  phaseOf,
  requestOf,
} from "./calls.js";
import type { EngineConfig } from "./config.js";
import type { CallGraph } from "./graph.js";
import { readiness } from "./inputs.js";
import { PodRegistry } from "./pod-registry.js";
import { type LeaseWaiter, type PodIdentity, type PodRecord, fnKey } from "./pods.js";
import type { CallPolicy } from "./policy.js";
import { ReadyQueue } from "./ready-queue.js";
import { type CallStore } from "./store.js";

export interface DispatcherDeps {
  graph: CallGraph;
  store: CallStore;
  clock: Clock;
  config: Pick<EngineConfig, "heartbeatTimeoutMs" | "heartbeatIntervalMs">;
  policy: (call: Call) => CallPolicy;
  /** Calls to reconcile again: an attempt may be lost (pod gone or silent), or a Running write failed. */
  onLost: (keys: string[]) => void;
  /** A call was assigned: how long it waited ready (ms), for the dispatch-latency histogram. */
  onDispatched?: (namespace: string, application: string, fn: string, queuedMs: number) => void;
  /** Queued or running counts of an application changed (the Application controller scales). */
  onBacklog?: (namespace: string, application: string) => void;
  /** A pod registered, went busy or idle, or was lost (the Application controller watches). */
  onPodActivity?: (namespace: string, pod: string) => void;
}

export class Dispatcher implements DispatcherView {
  private readonly queues = new Map<string, ReadyQueue>();
  private readonly waitersByFn = new Map<string, LeaseWaiter[]>();
  private readonly pumpScheduled = new Set<string>();
  private readonly dueTimers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  /** Calls whose Running write is in flight. */
  private readonly starting = new Set<string>();
  /** The pods: liveness, heartbeats, running calls, cancellations. */
  readonly pods: PodRegistry;
  assignments = 0;

  constructor(private readonly d: DispatcherDeps) {
    this.pods = new PodRegistry({
      graph: d.graph,
      clock: d.clock,
      config: d.config,
      onLost: d.onLost,
      onUnreachable: (pod) => pod.waiter && this.finish(pod.waiter, []),
      onBacklog: d.onBacklog,
      onPodActivity: d.onPodActivity,
    });
  }

  // ---- ready queues ---------------------------------------------------------------------------

  enqueue(call: Call, notBefore?: number): void {
    const key = callKey(namespaceOf(call), nameOf(call));
    if (this.starting.has(key)) return;
    const q = this.queueOf(namespaceOf(call), call.spec.application, call.spec.function);
    const before = q.size;
    q.add(nameOf(call), this.d.clock.now(), notBefore);
    if (q.size !== before) this.d.onBacklog?.(q.namespace, q.application);
    this.schedulePump(q);
  }

  dequeue(namespace: string, name: string, app: string, fn: string): void {
    if (this.queues.get(fnKey(namespace, app, fn))?.remove(name)) this.d.onBacklog?.(namespace, app);
  }

  isQueued(call: Call): boolean {
    const q = this.queues.get(fnKey(namespaceOf(call), call.spec.application, call.spec.function));
    return q?.has(nameOf(call)) ?? false;
  }

  private queueOf(namespace: string, app: string, fn: string): ReadyQueue {
    const k = fnKey(namespace, app, fn);
    let q = this.queues.get(k);
    if (!q) this.queues.set(k, (q = new ReadyQueue(namespace, app, fn)));
    return q;
  }

  // ---- leases ---------------------------------------------------------------------------------

  /** Long-polls for up to `capacity` calls for the pod's function. */
  lease(id: PodIdentity, capacity: number, waitMs: number, signal?: AbortSignal): Promise<Assignment[]> {
    const pod = this.pods.touch(id);
    this.pods.markRegistered(pod);
    if (pod.waiter && !pod.waiter.done) this.finish(pod.waiter, []);
    if (pod.undelivered.length > 0) return Promise.resolve(pod.undelivered.splice(0));
    if (capacity === 0 || pod.draining || pod.state === "gone") return Promise.resolve([]);
    const q = this.queueOf(id.namespace, id.application, id.function);
    return new Promise((resolve) => {
      const w: LeaseWaiter = {
        pod,
        capacity,
        deadline: this.d.clock.now() + waitMs,
        timer: undefined,
        resolve,
        done: false,
      };
      pod.waiter = w;
      // The pod hung up: no call may be assigned to a lease nobody reads (those being written
      // already go to the pod's next lease).
      signal?.addEventListener("abort", () => this.finish(w, []), { once: true });
      this.park(q, w);
      this.schedulePump(q);
    });
  }

  private park(q: ReadyQueue, w: LeaseWaiter): void {
    const k = fnKey(q.namespace, q.application, q.fn);
    let list = this.waitersByFn.get(k);
    if (!list) this.waitersByFn.set(k, (list = []));
    list.push(w);
    const left = Math.max(0, w.deadline - this.d.clock.now());
    w.timer = setTimeout(() => {
      const l = this.waitersByFn.get(k);
      const i = l?.indexOf(w) ?? -1;
      if (i >= 0) l!.splice(i, 1);
      this.finish(w, []);
    }, left);
  }

  private finish(w: LeaseWaiter, a: Assignment[]): void {
    if (w.done) return;
    w.done = true;
    if (w.timer) clearTimeout(w.timer);
    if (w.pod.waiter === w) w.pod.waiter = undefined;
    w.resolve(a);
  }

  private schedulePump(q: ReadyQueue): void {
    const k = fnKey(q.namespace, q.application, q.fn);
    if (this.pumpScheduled.has(k)) return;
    this.pumpScheduled.add(k);
    // Same turn of the event loop, after the current burst of enqueues: one match for all.
    setImmediate(() => {
      this.pumpScheduled.delete(k);
      this.pump(q);
    });
  }

  private pump(q: ReadyQueue): void {
    const k = fnKey(q.namespace, q.application, q.fn);
    const now = this.d.clock.now();
    const list = this.waitersByFn.get(k) ?? [];
    while (list.length > 0 && q.hasDue(now)) {
      const w = list.shift()!;
      if (w.done) continue;
      const taken = q.take(w.capacity, now);
      if (taken.length > 0) this.d.onBacklog?.(q.namespace, q.application);
      if (w.timer) clearTimeout(w.timer);
      w.timer = undefined;
      void this.assign(q, w, taken);
    }
    this.armDue(q);
  }

  /** Wakes the queue when its earliest retryAfter comes. */
  private armDue(q: ReadyQueue): void {
    const k = fnKey(q.namespace, q.application, q.fn);
    const at = q.nextDue();
    const cur = this.dueTimers.get(k);
    if (at === undefined || (cur && cur.at <= at)) return;
    if (cur) clearTimeout(cur.timer);
    const timer = setTimeout(
      () => {
        this.dueTimers.delete(k);
        this.pump(q);
      },
      Math.max(0, at - this.d.clock.now()),
    );
    timer.unref?.();
    this.dueTimers.set(k, { at, timer });
  }

  private async assign(q: ReadyQueue, w: LeaseWaiter, taken: { name: string; readyAt: number }[]): Promise<void> {
    const results = await Promise.all(
      taken.map((t) =>
        this.start(q, w.pod, t.name, t.readyAt).catch(() => {
          // The Running write failed (API error): the call left the queue; its reconcile puts it back.
          this.d.onLost([callKey(q.namespace, t.name)]);
          return undefined;
        }),
      ),
    );
    const out = results.filter((a): a is Assignment => a !== undefined);
    this.assignments += out.length;
    if (out.length > 0 || this.d.clock.now() >= w.deadline || w.done) {
      if (w.done)
        this.giveBack(w.pod, out); // superseded while writing: the calls go back
      else this.finish(w, out);
      return;
    }
    this.park(q, w);
    this.schedulePump(q);
  }

  /** Assignments persisted for a lease that was superseded meanwhile: the pod's next lease gets them. */
  private giveBack(pod: PodRecord, out: Assignment[]): void {
    const parked = pod.waiter;
    // A newer lease is parked (not being answered): it takes them now.
    if (parked && !parked.done && parked.timer !== undefined)
      this.finish(parked, [...pod.undelivered.splice(0), ...out]);
    else pod.undelivered.push(...out);
  }

  /** Persists the assignment of one call to the pod; undefined if it is no longer dispatchable. */
  private start(q: ReadyQueue, pod: PodRecord, name: string, readyAt: number): Promise<Assignment | undefined> {
    const key = callKey(q.namespace, name);
    this.starting.add(key);
    return this.d.store
      .withLock(key, async () => {
        const now = this.d.clock.now();
        const cur = this.d.graph.get(q.namespace, name);
        if (!cur || !this.dispatchable(cur)) return undefined;
        const retryAfter = notBeforeOf(cur);
        if (retryAfter !== undefined && retryAfter > now) {
          q.add(name, readyAt, retryAfter);
          this.armDue(q);
          return undefined;
        }
        const attempt = (cur.status?.attempts ?? 0) + 1;
        const patch: Record<string, unknown> = {
          phase: "Running",
          pod: pod.id.pod,
          attempts: attempt,
          startTime: new Date(now).toISOString(),
          retryAfter: null,
        };
        if (cur.status?.queuedTime === undefined) patch.queuedTime = new Date(readyAt).toISOString();
        const out = await this.d.store.patchStatus(cur, patch);
        if (!out) return undefined;
        this.pods.addRunning(pod, name, attempt, now);
        this.d.onDispatched?.(q.namespace, q.application, q.fn, now - readyAt);
        return this.assignment(out, attempt);
      })
      .finally(() => this.starting.delete(key));
  }

  private dispatchable(c: Call): boolean {
    const p = phaseOf(c);
    if (p !== "Pending" && p !== "Blocked" && p !== "Queued") return false;
    if (isDeleting(c) || isCollection(c)) return false;
    return readiness(c, (n) => this.d.graph.get(namespaceOf(c), n)).ready;
  }

  private assignment(c: Call, attempt: number): Assignment {
    const ns = namespaceOf(c);
    const resolve = (v: NonNullable<Call["spec"]["args"]>[number]) =>
      v.call === undefined ? v : (this.d.graph.get(ns, v.call)?.status?.output ?? { value: null });
    return {
      call: nameOf(c),
      attempt,
      function: c.spec.function,
      request: requestOf(c),
      args: (c.spec.args ?? []).map(resolve),
      kwargs: Object.fromEntries(Object.entries(c.spec.kwargs ?? {}).map(([k, v]) => [k, resolve(v)])),
      headers: c.spec.headers ?? {},
      timeoutSeconds: this.d.policy(c).timeoutSeconds,
      isRoot: isRoot(c),
    };
  }

  /** Whether the pod has a lease parked (long-polling). */
  leaseWaiting(namespace: string, pod: string): boolean {
    const w = this.pods.get(namespace, pod)?.waiter;
    return w !== undefined && !w.done;
  }

  // ---- DispatcherView (the Application controller scales on these) ----------------------------

  queuedAndRunning(namespace: string, app: string, fn: string): Backlog {
    return {
      queued: this.queues.get(fnKey(namespace, app, fn))?.size ?? 0,
      running: this.pods.running(namespace, app, fn),
    };
  }

  podActivity(namespace: string, pod: string): PodActivity | undefined {
    return this.pods.activity(namespace, pod);
  }

  functionsWithBacklog(namespace: string, app: string): string[] {
    const out = new Set<string>(this.pods.functionsRunning(namespace, app));
    for (const q of this.queues.values())
      if (q.namespace === namespace && q.application === app && q.size > 0) out.add(q.fn);
    return [...out];
  }

  stop(): void {
    this.pods.stop();
    for (const t of this.dueTimers.values()) clearTimeout(t.timer);
  }
}
