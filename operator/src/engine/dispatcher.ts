// Ready queues ↔ pod leases. Matching is immediate on either side: a call arriving while a lease
// waits, or a lease arriving while calls wait. Before a lease is answered the assignment is
// persisted (phase Running, pod, attempts, startTime), so nothing runs unseen; then `{call}`
// inputs are resolved to outputs. Also: heartbeats, cancellations, per-function counts.
import type { Backlog, DiscoveredFunction, DispatcherView, PodActivity } from "../application/types.js";
import type { Clock } from "../kube/types.js";
import type { Assignment } from "../runtime-api/messages.js";
import type { PodState } from "./actions.js";
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
import { type LeaseWaiter, type PodIdentity, type PodRecord, fnKey, podKey } from "./pods.js";
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

const GONE_REMEMBERED = 10_000;

export class Dispatcher implements DispatcherView {
  private readonly queues = new Map<string, ReadyQueue>();
  private readonly pods = new Map<string, PodRecord>();
  private readonly waitersByFn = new Map<string, LeaseWaiter[]>();
  private readonly runningByFn = new Map<string, number>();
  private readonly pumpScheduled = new Set<string>();
  private readonly dueTimers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly discoveredByApp = new Map<string, DiscoveredFunction[]>();
  /** Calls whose Running write is in flight. */
  private readonly starting = new Set<string>();
  /** Pods deleted lately (a Running call found after a restart may name one). */
  private readonly gone = new Map<string, number>();
  assignments = 0;

  constructor(private readonly d: DispatcherDeps) {}

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
    const pod = this.touch(id);
    this.markRegistered(pod);
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
    pod.undelivered.push(...out);
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
        this.addRunning(pod, name, attempt, now);
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

  // ---- pods -----------------------------------------------------------------------------------

  register(id: PodIdentity, functions: DiscoveredFunction[]): void {
    const pod = this.touch(id);
    pod.registered = true;
    this.d.onPodActivity?.(id.namespace, id.pod);
    pod.draining = false;
    pod.functions = functions;
    this.discoveredByApp.set(`${id.namespace}/${id.application}`, functions);
  }

  /** A sidecar leases and heartbeats only after its register, maybe before this operator started. */
  private markRegistered(pod: PodRecord): void {
    if (pod.registered) return;
    pod.registered = true;
    this.d.onPodActivity?.(pod.id.namespace, pod.id.pod);
  }

  /** Decorator settings the runtime reported for a function of an application. */
  discovered(namespace: string, app: string, fn: string): DiscoveredFunction | undefined {
    return this.discoveredByApp.get(`${namespace}/${app}`)?.find((f) => f.name === fn);
  }

  /** The whole function table the runtime last reported for an application. */
  discoveredTable(namespace: string, app: string): DiscoveredFunction[] | undefined {
    return this.discoveredByApp.get(`${namespace}/${app}`);
  }

  /**
   * A heartbeat: the calls the pod runs. The answer lists those it must abort: cancelled, no
   * longer assigned to it (re-queued, timed out, deleted) or a stale attempt.
   */
  heartbeat(id: PodIdentity, calls: { call: string; attempt: number }[], draining: boolean): string[] {
    const pod = this.touch(id);
    this.markRegistered(pod);
    const now = this.d.clock.now();
    pod.draining = draining;
    const cancel = new Set<string>();
    const reported = new Set<string>();
    for (const { call, attempt } of calls) {
      reported.add(call);
      const cur = this.d.graph.get(id.namespace, call);
      const mine =
        cur && phaseOf(cur) === "Running" && cur.status?.pod === id.pod && (cur.status?.attempts ?? 0) === attempt;
      if (!mine) cancel.add(call);
      else if (!pod.running.has(call)) this.addRunning(pod, call, attempt, now);
    }
    for (const c of pod.cancels) if (reported.has(c)) cancel.add(c);
    pod.cancels.clear();
    const lost: string[] = [];
    for (const [name, e] of pod.running) {
      if (!reported.has(name) && !e.lost && e.assignedAt < now - 2 * this.d.config.heartbeatIntervalMs) {
        e.lost = true;
        lost.push(callKey(id.namespace, name));
      }
    }
    if (lost.length > 0) this.d.onLost(lost);
    return [...cancel];
  }

  /** Asks the pod to abort a call at its next heartbeat. */
  cancel(namespace: string, pod: string, name: string): void {
    this.pods.get(podKey(namespace, pod))?.cancels.add(name);
  }

  /** A Running call found in the cache (operator restart): watch its pod like any other. */
  track(call: Call, pod: string, attempt: number): void {
    if (this.gone.has(podKey(namespaceOf(call), pod))) return;
    const id = { namespace: namespaceOf(call), pod, application: call.spec.application, function: call.spec.function };
    const rec = this.pods.get(podKey(id.namespace, pod)) ?? this.touch(id);
    if (!rec.running.has(nameOf(call))) this.addRunning(rec, nameOf(call), attempt, this.d.clock.now());
  }

  /** The attempt's standing for decisions: is the pod running it alive? */
  attemptState(namespace: string, pod: string, name: string, attempt: number): PodState {
    const rec = this.pods.get(podKey(namespace, pod));
    if (!rec) return this.gone.has(podKey(namespace, pod)) ? "gone" : "untracked";
    if (rec.state === "gone") return "gone";
    if (rec.state === "lost") return "lost";
    const e = rec.running.get(name);
    if (!e || e.attempt !== attempt) return "untracked";
    return e.lost ? "lost" : "alive";
  }

  /** The pod was deleted: its calls are lost. */
  podGone(namespace: string, pod: string): void {
    const k = podKey(namespace, pod);
    this.gone.set(k, this.d.clock.now());
    if (this.gone.size > GONE_REMEMBERED) this.gone.delete(this.gone.keys().next().value!);
    const rec = this.pods.get(k);
    if (!rec) return;
    rec.state = "gone";
    if (rec.watchdog) clearTimeout(rec.watchdog);
    if (rec.waiter) this.finish(rec.waiter, []);
    const keys = [...rec.running.keys()].map((n) => callKey(namespace, n));
    if (keys.length > 0) this.d.onLost(keys);
    else this.pods.delete(podKey(namespace, pod));
  }

  /** The call left Running on `pod` (finished, re-queued, cancelled). */
  release(namespace: string, pod: string, name: string): void {
    const rec = this.pods.get(podKey(namespace, pod));
    if (!rec || !rec.running.delete(name)) return;
    const k = fnKey(namespace, rec.id.application, rec.id.function);
    this.runningByFn.set(k, Math.max(0, (this.runningByFn.get(k) ?? 1) - 1));
    this.d.onBacklog?.(namespace, rec.id.application);
    if (rec.running.size === 0) {
      this.d.onPodActivity?.(namespace, pod);
      rec.lastBusyAt = this.d.clock.now();
      if (rec.state === "gone") this.pods.delete(podKey(namespace, pod));
    }
  }

  private addRunning(pod: PodRecord, name: string, attempt: number, now: number): void {
    if (!pod.running.has(name)) {
      const k = fnKey(pod.id.namespace, pod.id.application, pod.id.function);
      this.runningByFn.set(k, (this.runningByFn.get(k) ?? 0) + 1);
      this.d.onBacklog?.(pod.id.namespace, pod.id.application);
      if (pod.running.size === 0) this.d.onPodActivity?.(pod.id.namespace, pod.id.pod);
    }
    pod.running.set(name, { attempt, assignedAt: now, lost: false });
  }

  /** Creates or refreshes a pod's record; any contact resets its heartbeat watchdog. */
  private touch(id: PodIdentity): PodRecord {
    const k = podKey(id.namespace, id.pod);
    let rec = this.pods.get(k);
    if (!rec) {
      rec = {
        id,
        registered: false,
        state: "alive",
        draining: false,
        running: new Map(),
        cancels: new Set(),
        undelivered: [],
      };
      this.pods.set(k, rec);
    }
    if (rec.state === "lost") rec.state = "alive";
    if (rec.state === "gone") return rec;
    if (rec.watchdog) rec.watchdog.refresh();
    else {
      const r = rec;
      r.watchdog = setTimeout(() => {
        if (r.state !== "alive") return;
        r.state = "lost";
        if (r.waiter) this.finish(r.waiter, []);
        const keys = [...r.running.keys()].map((n) => callKey(id.namespace, n));
        if (keys.length > 0) this.d.onLost(keys);
      }, this.d.config.heartbeatTimeoutMs);
      r.watchdog.unref?.();
    }
    return rec;
  }

  /** Whether the pod has a lease parked (long-polling). */
  leaseWaiting(namespace: string, pod: string): boolean {
    const w = this.pods.get(podKey(namespace, pod))?.waiter;
    return w !== undefined && !w.done;
  }

  /** Names of the calls a pod runs now. */
  runningOn(namespace: string, pod: string): string[] {
    return [...(this.pods.get(podKey(namespace, pod))?.running.keys() ?? [])];
  }

  // ---- DispatcherView (the Application controller scales on these) ----------------------------

  queuedAndRunning(namespace: string, app: string, fn: string): Backlog {
    const k = fnKey(namespace, app, fn);
    return { queued: this.queues.get(k)?.size ?? 0, running: this.runningByFn.get(k) ?? 0 };
  }

  podActivity(namespace: string, pod: string): PodActivity | undefined {
    const rec = this.pods.get(podKey(namespace, pod));
    if (!rec) return undefined;
    const a: PodActivity = { registered: rec.registered, running: rec.running.size };
    if (rec.lastBusyAt !== undefined) a.lastBusyAt = rec.lastBusyAt;
    if (rec.functions) a.functions = rec.functions;
    return a;
  }

  functionsWithBacklog(namespace: string, app: string): string[] {
    const out = new Set<string>();
    for (const q of this.queues.values())
      if (q.namespace === namespace && q.application === app && q.size > 0) out.add(q.fn);
    const prefix = `${namespace}/${app}/`;
    for (const [k, n] of this.runningByFn) if (n > 0 && k.startsWith(prefix)) out.add(k.slice(prefix.length));
    return [...out];
  }

  stop(): void {
    for (const rec of this.pods.values()) {
      if (rec.watchdog) clearTimeout(rec.watchdog);
      if (rec.waiter) this.finish(rec.waiter, []);
    }
    for (const t of this.dueTimers.values()) clearTimeout(t.timer);
  }
}
