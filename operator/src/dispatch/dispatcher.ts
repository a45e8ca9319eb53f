// Ready queues ↔ pod leases. Matching is immediate on either side: a call arriving while a lease
// waits, or a lease arriving while calls wait. Before a lease is answered each assignment is
// persisted through `start` (phase Running, pod, attempts, startTime: decided and written by the
// FunctionCall side), so nothing runs unseen. Pods (liveness, heartbeats, running calls) are in
// PodRegistry. The dispatcher holds names only; it never reads a FunctionCall.
import type { Assignment } from "../../../protocol/index.js";
import type { Backlog, DispatcherView, PodActivity } from "../application/index.js";
import type { Clock } from "../kube/index.js";
import { PodRegistry } from "./pod-registry.js";
import {
  type CallRef,
  type DispatchConfig,
  type LeaseAnswer,
  type LeaseWaiter,
  type PodIdentity,
  type PodRecord,
  type RunningAttempt,
  type StartCall,
  callKey,
  fnKey,
} from "./pods.js";
import { ReadyQueue } from "./ready-queue.js";

export interface DispatcherDeps {
  clock: Clock;
  config: DispatchConfig;
  /** Persists the assignment of a queued call to a leasing pod. */
  start: StartCall;
  runningAttempt: RunningAttempt;
  /** Calls to reconcile again: an attempt may be lost (pod gone or silent), or a Running write failed. */
  onLost: (keys: string[]) => void;
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
      clock: d.clock,
      config: d.config,
      runningAttempt: d.runningAttempt,
      onLost: d.onLost,
      onUnreachable: (pod) => pod.waiter && this.finish(pod.waiter, []),
      onBacklog: d.onBacklog,
      onPodActivity: d.onPodActivity,
    });
  }

  // ---- ready queues ---------------------------------------------------------------------------

  /** Puts the call on its function's ready queue, not to be started before `notBefore` (ms). */
  enqueue(call: CallRef, notBefore?: number): void {
    if (this.starting.has(callKey(call.namespace, call.name))) return;
    const q = this.queueOf(call.namespace, call.application, call.function);
    const before = q.size;
    q.add(call.name, this.d.clock.now(), notBefore);
    if (q.size !== before) this.d.onBacklog?.(q.namespace, q.application);
    this.schedulePump(q);
  }

  dequeue(call: CallRef): void {
    if (this.queues.get(fnKey(call.namespace, call.application, call.function))?.remove(call.name))
      this.d.onBacklog?.(call.namespace, call.application);
  }

  isQueued(call: CallRef): boolean {
    return this.queues.get(fnKey(call.namespace, call.application, call.function))?.has(call.name) ?? false;
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
    return this.leaseAnswer(id, capacity, waitMs, signal).then((r) => r.assignments);
  }

  /** `lease`, answered as the runtime API sends it: stamped with this operator's epoch and a seq. */
  leaseAnswer(id: PodIdentity, capacity: number, waitMs: number, signal?: AbortSignal): Promise<LeaseAnswer> {
    const pod = this.pods.touch(id);
    this.pods.markRegistered(pod);
    if (pod.waiter && !pod.waiter.done) this.finish(pod.waiter, []);
    if (pod.undelivered.length > 0) return Promise.resolve(this.pods.stamp(pod, pod.undelivered.splice(0)));
    if (capacity === 0 || pod.draining || pod.state === "gone") return Promise.resolve(this.pods.stamp(pod, []));
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
    // Stamped as it is handed to the pod, not when written: undelivered ones carry no seq yet.
    w.resolve(this.pods.stamp(w.pod, a));
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
    this.handOver(
      w,
      results.filter((a): a is Assignment => a !== undefined),
    );
  }

  /**
   * Takes a parked lease of the function for calls assigned as they are created (a sync call's
   * child: its create carries the assignment, see protocol/src/assigned-at-create.ts); undefined
   * when none is parked or older calls wait on the queue (they go first). The caller answers it
   * with `handOver`, with the calls whose create carried the assignment (none gives it back).
   */
  reserve(namespace: string, app: string, fn: string): LeaseWaiter | undefined {
    const k = fnKey(namespace, app, fn);
    if (this.queues.get(k)?.hasDue(this.d.clock.now())) return undefined;
    const list = this.waitersByFn.get(k);
    while (list && list.length > 0) {
      const w = list.shift()!;
      if (w.done) continue;
      if (w.timer) clearTimeout(w.timer);
      w.timer = undefined;
      return w;
    }
    return undefined;
  }

  /** Answers a lease taken by `reserve` or the pump with its persisted assignments (or parks it again). */
  handOver(w: LeaseWaiter, out: Assignment[]): void {
    const q = this.queueOf(w.pod.id.namespace, w.pod.id.application, w.pod.id.function);
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

  /** Persists the assignment of one call to the pod; undefined if it is not started now. */
  private async start(q: ReadyQueue, pod: PodRecord, name: string, readyAt: number): Promise<Assignment | undefined> {
    const key = callKey(q.namespace, name);
    this.starting.add(key);
    try {
      const r = await this.d.start(pod.id, name, readyAt);
      if (r && "notBefore" in r) {
        // Not yet (retry backoff, run_later): back to the queue until then.
        q.add(name, readyAt, r.notBefore);
        this.armDue(q);
        return undefined;
      }
      return r?.assignment;
    } finally {
      this.starting.delete(key);
    }
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
