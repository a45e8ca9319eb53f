// What the operator knows of each function pod: identity, liveness (a heartbeat watchdog), the
// calls it runs (with per-function running counts), cancellations to hand it in its next
// heartbeat answer, and the function table its runtime reported.
import { randomBytes } from "node:crypto";
import type { Assignment } from "../../../protocol/index.js";
import type { DiscoveredFunction, PodActivity } from "../application/index.js";
import type { Clock } from "../kube/index.js";
import {
  type CallRef,
  type DispatchConfig,
  type HeartbeatLease,
  type LeaseAnswer,
  type PodIdentity,
  type PodRecord,
  type PodState,
  type RunningAttempt,
  type RunningEntry,
  callKey,
  fnKey,
  podKey,
} from "./pods.js";

export interface PodRegistryDeps {
  clock: Clock;
  config: DispatchConfig;
  /** Whether a reported attempt is the persisted running one (a heartbeat's calls are checked). */
  runningAttempt: RunningAttempt;
  /** Calls whose attempt may be lost (pod gone or silent): reconcile them. */
  onLost: (keys: string[]) => void;
  /** The pod can no longer take work (lost or gone): end its parked lease. */
  onUnreachable: (pod: PodRecord) => void;
  onBacklog?: (namespace: string, application: string) => void;
  onPodActivity?: (namespace: string, pod: string) => void;
  /** This operator process in lease answers; default: random. */
  epoch?: string;
}

const GONE_REMEMBERED = 10_000;

export class PodRegistry {
  private readonly pods = new Map<string, PodRecord>();
  private readonly runningByFn = new Map<string, number>();
  private readonly discoveredByApp = new Map<string, DiscoveredFunction[]>();
  /** Pods deleted lately (a Running call found after a restart may name one). */
  private readonly gone = new Map<string, number>();
  /** Stamped on lease answers: a heartbeat naming another epoch says nothing of our deliveries. */
  readonly epoch: string;

  constructor(private readonly d: PodRegistryDeps) {
    this.epoch = d.epoch ?? randomBytes(8).toString("hex");
  }

  get(namespace: string, pod: string): PodRecord | undefined {
    return this.pods.get(podKey(namespace, pod));
  }

  /** Creates or refreshes a pod's record; any contact resets its heartbeat watchdog. */
  touch(id: PodIdentity): PodRecord {
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
        leaseSeq: 0,
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
        this.d.onUnreachable(r);
        const keys = [...r.running.keys()].map((n) => callKey(id.namespace, n));
        if (keys.length > 0) this.d.onLost(keys);
      }, this.d.config.heartbeatTimeoutMs);
      r.watchdog.unref?.();
    }
    return rec;
  }

  register(id: PodIdentity, functions: DiscoveredFunction[]): void {
    const pod = this.touch(id);
    pod.registered = true;
    pod.draining = false;
    pod.functions = functions;
    this.discoveredByApp.set(`${id.namespace}/${id.application}`, functions);
    this.d.onPodActivity?.(id.namespace, id.pod);
  }

  /** A sidecar leases and heartbeats only after its register, maybe before this operator started. */
  markRegistered(pod: PodRecord): void {
    if (pod.registered) return;
    pod.registered = true;
    this.d.onPodActivity?.(pod.id.namespace, pod.id.pod);
  }

  /** The function table the runtime last reported for an application. */
  discoveredTable(namespace: string, app: string): DiscoveredFunction[] | undefined {
    return this.discoveredByApp.get(`${namespace}/${app}`);
  }

  discovered(namespace: string, app: string, fn: string): DiscoveredFunction | undefined {
    return this.discoveredTable(namespace, app)?.find((f) => f.name === fn);
  }

  /**
   * A heartbeat: the calls the pod runs. The answer lists those it must abort: cancelled, no
   * longer assigned to it (re-queued, timed out, deleted) or a stale attempt. A call missing from
   * it is lost if the sidecar had it when it built the heartbeat (see `missing`).
   */
  heartbeat(
    id: PodIdentity,
    calls: { call: string; attempt: number }[],
    draining: boolean,
    lease?: HeartbeatLease,
  ): string[] {
    const pod = this.touch(id);
    this.markRegistered(pod);
    const now = this.d.clock.now();
    pod.draining = draining;
    const cancel = new Set<string>();
    const reported = new Set<string>();
    for (const { call, attempt } of calls) {
      reported.add(call);
      const cur = this.d.runningAttempt(id.namespace, call);
      const mine = cur !== undefined && cur.pod === id.pod && cur.attempt === attempt;
      if (!mine) cancel.add(call);
      else if (!pod.running.has(call)) this.addRunning(pod, call, attempt, now, true);
    }
    for (const c of pod.cancels) if (reported.has(c)) cancel.add(c);
    pod.cancels.clear();
    const lost: string[] = [];
    for (const [name, e] of pod.running) {
      if (!reported.has(name) && !e.lost && this.missing(e, lease, now)) {
        e.lost = true;
        lost.push(callKey(id.namespace, name));
      }
    }
    if (lost.length > 0) this.d.onLost(lost);
    return [...cancel];
  }

  /** Whether an entry the heartbeat does not list was lost by the sidecar. */
  private missing(e: RunningEntry, lease: HeartbeatLease | undefined, now: number): boolean {
    // An older sidecar, or a call an earlier operator delivered: absent two intervals after it was
    // assigned (a heartbeat built before a slow lease answer arrived can still miss it).
    if (lease === undefined || e.tracked) return e.assignedAt < now - 2 * this.d.config.heartbeatIntervalMs;
    // Exact: the sidecar built the heartbeat after it took the answer that delivered the call.
    // Not delivered yet (a superseded lease's, waiting in `undelivered`): it cannot be missing.
    return lease !== null && lease.epoch === this.epoch && e.seq !== undefined && lease.seq >= e.seq;
  }

  /**
   * Stamps a lease answer: one with assignments gets the pod's next seq, recorded on their
   * running entries; an empty one repeats the last seq (so a heartbeat after it shows an answer
   * lost on the way, whose calls the sidecar then lacks).
   */
  stamp(pod: PodRecord, assignments: Assignment[]): LeaseAnswer {
    if (assignments.length > 0) {
      const seq = ++pod.leaseSeq;
      for (const a of assignments) {
        const e = pod.running.get(a.call);
        if (e && e.attempt === a.attempt) e.seq = seq;
      }
    }
    return { assignments, epoch: this.epoch, seq: pod.leaseSeq };
  }

  /** Asks the pod to abort a call at its next heartbeat. */
  cancel(namespace: string, pod: string, name: string): void {
    this.get(namespace, pod)?.cancels.add(name);
  }

  /** A Running call found in the cache (operator restart): watch its pod like any other. */
  track(call: CallRef, pod: string, attempt: number): void {
    const ns = call.namespace;
    if (this.gone.has(podKey(ns, pod))) return;
    const rec =
      this.get(ns, pod) ?? this.touch({ namespace: ns, pod, application: call.application, function: call.function });
    if (!rec.running.has(call.name)) this.addRunning(rec, call.name, attempt, this.d.clock.now(), true);
  }

  /** The assignment of `name` to `pod` is persisted: the pod runs that attempt from now on. */
  assigned(namespace: string, pod: string, name: string, attempt: number): void {
    const rec = this.get(namespace, pod);
    if (rec) this.addRunning(rec, name, attempt, this.d.clock.now());
  }

  /** The attempt's standing for decisions: is the pod running it alive? */
  attemptState(namespace: string, pod: string, name: string, attempt: number): PodState {
    const rec = this.get(namespace, pod);
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
    this.d.onUnreachable(rec);
    const keys = [...rec.running.keys()].map((n) => callKey(namespace, n));
    if (keys.length > 0) this.d.onLost(keys);
    else this.pods.delete(k);
  }

  /** `tracked`: delivered by an earlier operator (restart), not by a lease answer of this one. */
  addRunning(pod: PodRecord, name: string, attempt: number, now: number, tracked = false): void {
    if (!pod.running.has(name)) {
      const k = fnKey(pod.id.namespace, pod.id.application, pod.id.function);
      this.runningByFn.set(k, (this.runningByFn.get(k) ?? 0) + 1);
      this.d.onBacklog?.(pod.id.namespace, pod.id.application);
      if (pod.running.size === 0) this.d.onPodActivity?.(pod.id.namespace, pod.id.pod);
    }
    pod.running.set(name, { attempt, assignedAt: now, tracked, lost: false });
  }

  /** The call left Running on `pod` (finished, re-queued, cancelled). */
  release(namespace: string, pod: string, name: string): void {
    const rec = this.get(namespace, pod);
    if (!rec || !rec.running.delete(name)) return;
    const k = fnKey(namespace, rec.id.application, rec.id.function);
    this.runningByFn.set(k, Math.max(0, (this.runningByFn.get(k) ?? 1) - 1));
    this.d.onBacklog?.(namespace, rec.id.application);
    if (rec.running.size === 0) {
      rec.lastBusyAt = this.d.clock.now();
      this.d.onPodActivity?.(namespace, pod);
      if (rec.state === "gone") this.pods.delete(podKey(namespace, pod));
    }
  }

  /** Names of the calls a pod runs now. */
  runningOn(namespace: string, pod: string): string[] {
    return [...(this.get(namespace, pod)?.running.keys() ?? [])];
  }

  running(namespace: string, app: string, fn: string): number {
    return this.runningByFn.get(fnKey(namespace, app, fn)) ?? 0;
  }

  /** Functions of an application with calls running. */
  functionsRunning(namespace: string, app: string): string[] {
    const prefix = `${namespace}/${app}/`;
    const out: string[] = [];
    for (const [k, n] of this.runningByFn) if (n > 0 && k.startsWith(prefix)) out.push(k.slice(prefix.length));
    return out;
  }

  activity(namespace: string, pod: string): PodActivity | undefined {
    const rec = this.get(namespace, pod);
    if (!rec) return undefined;
    const a: PodActivity = { registered: rec.registered, running: rec.running.size };
    if (rec.lastBusyAt !== undefined) a.lastBusyAt = rec.lastBusyAt;
    if (rec.functions) a.functions = rec.functions;
    return a;
  }

  stop(): void {
    for (const rec of this.pods.values()) {
      if (rec.watchdog) clearTimeout(rec.watchdog);
      this.d.onUnreachable(rec);
    }
  }
}
