// The engine's side of the runtime API (RuntimePort): every report and request of a pod is read
// from the graph, decided by a pure function and applied; writes to a call happen under its lock.
import { ASSIGNED_ANNOTATION, type Assignment } from "../../../protocol/index.js";
import { newBlobRef } from "../blobs/index.js";
import type { DiscoveredFunction } from "../application/index.js";
import type { Dispatcher, LeaseWaiter } from "../dispatch/index.js";
import type { Clock } from "../kube/index.js";
import type { CodeLoadFailure, Rejection, RuntimePort } from "../runtime-api/index.js";
import type { Action, CallView } from "./actions.js";
import { AnnouncedChildren } from "./announced.js";
import type { Applier } from "./apply.js";
import { type Call, callKey, isStatusAssumed, nameOf, outcomeOf, requestOf } from "./calls.js";
import { type AssignedChild, decideAssignedAtCreate } from "./decide-assignment.js";
import type { EngineConfig } from "./config.js";
import {
  type AccessView,
  decideBlobRead,
  decideBlobRequest,
  decideStateRead,
  decideStateWrite,
  decideWait,
} from "./decide-access.js";
import { decideChildren } from "./decide-children.js";
import type { DependentsAtResult, PendingDependents } from "./dependents-at-result.js";
import { decideRefused } from "./decide-refusal.js";
import { checkProgress, decideFailure, decideResult, decideTail } from "./decide-report.js";
import type { CallGraph } from "./graph.js";
import type { ProgressThrottle } from "./progress.js";
import type { CallStore } from "./store.js";
import { reject } from "./rejections.js";
import type { Waiters } from "./waiters.js";

export interface RuntimePortDeps {
  config: EngineConfig;
  clock: Clock;
  graph: CallGraph;
  store: CallStore;
  dispatcher: Dispatcher;
  waiters: Waiters;
  progress: ProgressThrottle;
  applier: Applier;
  view: (namespace: string) => CallView;
  /** Function table a sidecar reported at register (the Application controller records it). */
  onDiscovered?: (namespace: string, application: string, functions: DiscoveredFunction[]) => void;
  /** A pod's worker could not import the code (the Application controller shows CodeLoaded=False). */
  onCodeLoadFailure?: (namespace: string, application: string, pod: string, failure: CodeLoadFailure) => void;
  /** Assigns a result's dependents while it is written (absent: they go through the queues). */
  dependents?: DependentsAtResult;
  /** How long a created child may stay out of the graph before a /wait on it is refused (call_not_found). */
  childVisibilityMs?: number;
}

/** A lagging cache catches up in well under this; longer and the child is taken to be gone. */
export const CHILD_VISIBILITY_MS = 300_000;

/** Children of one /children request that may be assigned as they are created (see SMALL_EXPANSION in apply.ts). */
const EAGER_BATCH = 4;

interface Reserved {
  lease: LeaseWaiter;
  children: AssignedChild[];
}

type Decide = (cur: Call | undefined, view: CallView, now: number) => Action[] | Rejection;

export function createRuntimePort(d: RuntimePortDeps): RuntimePort {
  const { config, graph, dispatcher } = d;
  const announced = new AnnouncedChildren(graph, () => d.clock.now(), d.childVisibilityMs ?? CHILD_VISIBILITY_MS);
  const access = (ns: string): AccessView => ({
    ...d.view(ns),
    runningOn: (pod) => dispatcher.pods.runningOn(ns, pod),
    announced: (name) => announced.requestOf(ns, name),
    callsOfRequest: (request) => graph.callsOfRequest(ns, request),
  });
  /**
   * A report on one call: decided and applied under the call's lock. `alongside` starts writes of
   * other calls that go out with this call's and are settled by how its writes ended.
   */
  const report = (
    ns: string,
    name: string,
    decide: Decide,
    alongside?: (cur: Call, actions: Action[], view: CallView) => PendingDependents | undefined,
  ): Promise<Rejection | undefined> =>
    d.store.withLock(callKey(ns, name), async () => {
      const cur = graph.get(ns, name);
      const view = d.view(ns);
      const actions = decide(cur, view, d.clock.now());
      if (!Array.isArray(actions)) return actions;
      if (!cur || actions.length === 0) return undefined;
      const pending = alongside?.(cur, actions, view);
      let written: Call | undefined;
      try {
        const done = await d.applier.apply(cur, actions);
        if (done.refused === undefined) written = done.call;
      } finally {
        pending?.settle(written);
      }
      return undefined;
    });

  /**
   * The children of a small batch (a sync call's child, a few futures) that a parked lease of their
   * function takes as they are created: their creates carry the assignment (no Running write),
   * and the lease is answered once they are made. A larger batch goes through the ready queues.
   */
  const assignAtCreate = (ns: string, actions: Action[]): Reserved[] => {
    const create = actions.find((a) => a.type === "create");
    if (!create || create.calls.length > EAGER_BATCH) return [];
    const view = d.view(ns);
    const byFn = new Map<string, Reserved>();
    const out: Reserved[] = [];
    create.calls.forEach((child, i) => {
      const fn = `${child.spec.application}/${child.spec.function}`;
      let r = byFn.get(fn);
      if (!r || r.children.length >= r.lease.capacity) {
        const lease = dispatcher.reserve(ns, child.spec.application, child.spec.function);
        if (!lease) return;
        byFn.set(fn, (r = { lease, children: [] }));
        out.push(r);
      }
      const a = decideAssignedAtCreate(child, view, r.lease.pod.id.pod, d.clock.now());
      if (!a) return;
      create.calls[i] = a.child;
      r.children.push(a);
    });
    return out;
  };
  /**
   * A pod's wait on calls; a Delegated one among them is reconciled once the wait holds for it:
   * read now, it may move past the links it passed (decideDelegated).
   */
  const waitOn: Waiters["wait"] = (ns, names, mode, waitMs) => {
    const waited = d.waiters.wait(ns, names, mode, waitMs);
    const delegated = names.map((n) => graph.get(ns, n)).filter((c): c is Call => c?.status?.phase === "Delegated");
    if (delegated.length > 0) d.applier.effects(delegated[0]!, [{ type: "reconcile", names: delegated.map(nameOf) }]);
    return waited;
  };
  /** Answers each reserved lease with the children whose create carried its assignment. */
  const handOverAssigned = (ns: string, reserved: Reserved[]): void => {
    for (const r of reserved) {
      const made: Assignment[] = [];
      for (const a of r.children) {
        const c = graph.get(ns, nameOf(a.child));
        // Created by this request (not found existing, nor failed): the graph holds it assigned.
        if (!c || !isStatusAssumed(c) || c.metadata.annotations?.[ASSIGNED_ANNOTATION] !== a.annotation) continue;
        d.applier.effects(c, a.effects);
        made.push(a.assignment);
      }
      dispatcher.handOver(r.lease, made);
    }
  };

  return {
    settings: {
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      leaseWaitMs: config.leaseWaitMs,
      inlineValueLimitBytes: config.inlineValueLimitBytes,
      // The runtime API sets it from its blob store (the engine does not know the store's kind).
      directBlobs: false,
    },
    maxBlobBytes: config.maxBlobBytes,
    register(id, functions) {
      dispatcher.pods.register(id, functions);
      d.onDiscovered?.(id.namespace, id.application, functions);
    },
    codeLoadFailure: (id, failure) => d.onCodeLoadFailure?.(id.namespace, id.application, id.pod, failure),
    lease: (id, capacity, waitMs, signal) => dispatcher.leaseAnswer(id, capacity, waitMs, signal),
    heartbeat: (id, calls, draining, lease) => dispatcher.pods.heartbeat(id, calls, draining, lease),
    reportResult: (id, name, attempt, output) =>
      report(
        id.namespace,
        name,
        (cur, view, now) => decideResult(cur, { pod: id.pod, name, attempt, output }, view, now),
        // Its dependents' Running writes go out beside its Succeeded write.
        (cur, actions, view) => d.dependents?.start(cur, actions, view),
      ),
    reportFailure: (id, name, r) =>
      report(id.namespace, name, (cur, view, now) => decideFailure(cur, { pod: id.pod, name, ...r }, view, now)),
    reportTail: (id, name, attempt, tailCall) =>
      report(id.namespace, name, (cur, view) => decideTail(cur, { pod: id.pod, name, attempt, tailCall }, view)),
    reportProgress(id, name, p) {
      const rejected = checkProgress(graph.get(id.namespace, name), id.pod, name);
      if (rejected) return rejected;
      d.progress.update(callKey(id.namespace, name), p);
      return undefined;
    },
    async createChildren(id, parent, attempt, calls) {
      const cur = graph.get(id.namespace, parent);
      const req = { pod: id.pod, parent, attempt, calls };
      const decided = decideChildren(cur, req, d.view(id.namespace), d.clock.now());
      if ("rejected" in decided) return decided;
      const eager = cur ? assignAtCreate(id.namespace, decided.actions) : [];
      // Creates need no lock; one that lost a race with another report finds the child made.
      let done: Awaited<ReturnType<Applier["apply"]>> | undefined;
      try {
        done = cur && decided.actions.length > 0 ? await d.applier.apply(cur, decided.actions) : undefined;
      } finally {
        handOverAssigned(id.namespace, eager);
      }
      if (done?.refused !== undefined) {
        // Refused for good (a transient error throws: the sidecar retries it): the parent fails.
        const message = done.refused;
        await report(id.namespace, parent, (c, _view, now) => decideRefused(c, message, now));
        return reject("invalid_body", `calls: ${message}; call ${parent} failed`);
      }
      // Made or found existing, yet maybe not in the graph (a lost create answer): waits hold for them.
      if (cur)
        announced.record(
          id.namespace,
          requestOf(cur),
          calls.map((c) => c.name),
        );
      const raced = (done?.existing ?? []).map(outcomeOf).filter((o) => o !== undefined);
      return { finished: [...decided.finished, ...raced] };
    },
    async wait(id, calls, mode, waitMs) {
      const ns = id.namespace;
      const rejected = decideWait(access(ns), id.pod, calls);
      if (rejected) return rejected;
      const unseen = calls.filter((n) => !graph.get(ns, n));
      if (unseen.length === 0) return waitOn(ns, calls, mode, waitMs);
      const shown = () => calls.filter((n) => graph.get(ns, n));
      if (mode === "any") {
        const now = await d.waiters.wait(ns, shown(), mode, 0);
        if (now.length > 0) return now;
      }
      // Created children the graph does not show yet: hold until it does, within this long-poll.
      // Any still unseen at its end get no outcome now; the sidecar asks again.
      const start = d.clock.now();
      const seen = await announced.visible(ns, unseen, waitMs);
      const left = seen ? Math.max(0, waitMs - (d.clock.now() - start)) : 0;
      return waitOn(ns, shown(), mode, left);
    },
    stateToRead: (id, request, key) => decideStateRead(access(id.namespace), id.pod, request, key),
    stateToWrite: (id, request, key, body) => decideStateWrite(access(id.namespace), id.pod, request, key, body),
    blobToPut(id, call) {
      const request = decideBlobRequest(access(id.namespace), id.pod, call);
      return typeof request === "string" ? newBlobRef(id.namespace, request) : request;
    },
    blobToGet: (id, ref) => decideBlobRead(access(id.namespace), id.pod, ref),
  };
}
