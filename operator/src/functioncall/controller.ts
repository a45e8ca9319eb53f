// The FunctionCall reconciler and the engine's other timed writes: each reads the call under its
// key's lock, runs a pure decision and applies it, so reports from pods, assignments and
// reconciles never interleave on one call.
import type { Clock, ObjectKey, ReconcileResult, Reconciler } from "../kube/index.js";
import type { PodIdentity, StartResult } from "../dispatch/index.js";
import type { CallView } from "./actions.js";
import type { Applier } from "./apply.js";
import { callKey, isShardObject, namespaceOf } from "./calls.js";
import { decideAssignment } from "./decide-assignment.js";
import { decideCall } from "./decide-call.js";
import { decideRefused } from "./decide-refusal.js";
import { decideProgressWrite } from "./decide-report.js";
import { decideWaitingWrite } from "./decide-waiting.js";
import type { CallGraph } from "./graph.js";
import type { ProgressValue } from "./progress.js";
import type { CallStore } from "./store.js";
import type { MarkTarget } from "./waiting-marker.js";

export interface ControllerDeps {
  graph: CallGraph;
  store: CallStore;
  applier: Applier;
  clock: Clock;
  view: (namespace: string) => CallView;
}

export class CallController {
  constructor(private readonly d: ControllerDeps) {}

  readonly reconcile: Reconciler = (key: ObjectKey) =>
    this.d.store.withLock(key, async (): Promise<ReconcileResult | void> => {
      const call = this.d.graph.getKey(key);
      // A shard is a container: its items are the calls (the graph reconciles each).
      if (!call || isShardObject(call)) return;
      const actions = decideCall(call, this.d.view(namespaceOf(call)), this.d.clock.now());
      const { requeueAfterMs, refused } = await this.d.applier.apply(call, actions);
      if (refused !== undefined) return this.refused(key, refused);
      if (requeueAfterMs !== undefined) return { requeueAfterMs };
    });

  /** A write the call needed was refused for good (e.g. a map item's create): the call fails. */
  private async refused(key: string, message: string): Promise<void> {
    const cur = this.d.graph.getKey(key);
    if (cur) await this.d.applier.apply(cur, decideRefused(cur, message, this.d.clock.now()));
  }

  /** Fails a call whose write was refused, under its lock (children are created without it). */
  failRefused(key: string, message: string): Promise<void> {
    return this.d.store.withLock(key, () => this.refused(key, message));
  }

  /** Persists the assignment of a queued call to a leasing pod (the dispatcher's `start`). */
  start(pod: PodIdentity, name: string, readyAt: number): Promise<StartResult> {
    const key = callKey(pod.namespace, name);
    return this.d.store.withLock(key, async (): Promise<StartResult> => {
      const cur = this.d.graph.getKey(key);
      const d = decideAssignment(cur, this.d.view(pod.namespace), pod.pod, readyAt, this.d.clock.now());
      if (d.type === "skip" || !cur) return undefined;
      if (d.type === "defer") return { notBefore: d.notBefore };
      const done = await this.d.applier.apply(cur, d.actions);
      return done.call && done.refused === undefined ? { assignment: d.assignment } : undefined;
    });
  }

  /** The deferred write of a waiting phase, if the call still waits in it (the WaitingMarker's write). */
  markWaiting(t: MarkTarget): Promise<void> {
    return this.d.store.withLock(t.key, async () => {
      const cur = this.d.graph.getKey(t.key);
      if (!cur) return;
      const actions = decideWaitingWrite(cur, t.phase, this.d.view(namespaceOf(cur)), this.d.clock.now());
      if (actions.length > 0) await this.d.applier.apply(cur, actions);
    });
  }

  /** A throttled progress write (the ProgressThrottle's write). */
  writeProgress(key: string, p: ProgressValue): Promise<void> {
    return this.d.store.withLock(key, async () => {
      const cur = this.d.graph.getKey(key);
      const actions = decideProgressWrite(cur, p);
      if (cur && actions.length > 0) await this.d.applier.apply(cur, actions);
    });
  }
}
