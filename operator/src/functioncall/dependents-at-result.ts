// Dependents assigned while their input's result is written: a parked lease of a dependent's
// function is reserved, the dependent's Running write goes out beside the input's Succeeded
// write, and the lease is answered once both are persisted. The dependent waits for one write
// instead of two in a row; nothing runs before its input's output is durable. If the input's
// write fails, the assignment (which no pod heard of) is taken back.
import type { Assignment, Logger, ValueRef } from "../../../protocol/index.js";
import type { Dispatcher, LeaseWaiter } from "../dispatch/index.js";
import type { Clock } from "../kube/index.js";
import type { Action, CallView, StatusPatch } from "./actions.js";
import type { Applier } from "./apply.js";
import { type Call, callKey, nameOf, namespaceOf, phaseOf, shardOf } from "./calls.js";
import { decideAssignment, dependentsReadyWith, unassignPatch } from "./decide-assignment.js";
import type { CallGraph } from "./graph.js";
import type { CallStore } from "./store.js";
import { needsBlob } from "./values.js";

export interface DependentsAtResultDeps {
  graph: CallGraph;
  store: CallStore;
  applier: Applier;
  dispatcher: Dispatcher;
  clock: Clock;
  inlineValueLimitBytes: number;
  logger?: Logger;
}

/** As many dependents as a sync call's children (EAGER_BATCH): a larger fan-out goes through the queues. */
const MAX_DEPENDENTS = 4;

interface Started {
  name: string;
  pod: string;
  attempt: number;
  assignment: Assignment;
  /** The call as it was before its Running write, and that write's patch. */
  before: Call;
  running: StatusPatch;
}

/**
 * Started assignments waiting for their input's write: `settle` (with the input as written, or
 * undefined when its write failed) answers them or takes them back.
 */
export interface PendingDependents {
  settle(written: Call | undefined): void;
}

export class DependentsAtResult {
  constructor(private readonly d: DependentsAtResultDeps) {}

  /**
   * Starts the assignments of the dependents that `actions` (a report's decision on `input`) make
   * ready, when its output is stored as reported (no blob to write first) and a lease is parked.
   */
  start(input: Call, actions: Action[], view: CallView): PendingDependents | undefined {
    const s = actions.find((a) => a.type === "status" && a.patch.phase === "Succeeded");
    const output = s?.type === "status" ? (s.output as ValueRef | undefined) : undefined;
    if (!output || shardOf(input) !== undefined || view.dependentsOf(nameOf(input)).length === 0) return undefined;
    // Sized only for a result with dependents (the common result has none: no second JSON.stringify).
    if (needsBlob(output, this.d.inlineValueLimitBytes)) return undefined;
    const { view: withResult, ready } = dependentsReadyWith(input, output, view, MAX_DEPENDENTS);
    if (ready.length === 0) return undefined;
    const ns = namespaceOf(input);
    const leases: { lease: LeaseWaiter; started: Promise<Started | undefined>[] }[] = [];
    const byFn = new Map<string, (typeof leases)[number]>();
    for (const c of ready) {
      const fn = `${c.spec.application}/${c.spec.function}`;
      let l = byFn.get(fn);
      if (!l || l.started.length >= l.lease.capacity) {
        const lease = this.d.dispatcher.reserve(ns, c.spec.application, c.spec.function);
        if (!lease) continue;
        byFn.set(fn, (l = { lease, started: [] }));
        leases.push(l);
      }
      l.started.push(this.assign(ns, nameOf(c), l.lease.pod.id.pod, withResult));
    }
    if (leases.length === 0) return undefined;
    return {
      settle: (written) => {
        const persisted = written !== undefined && phaseOf(written) === "Succeeded";
        void Promise.all(leases.map((l) => this.answer(ns, l.lease, l.started, persisted))).catch((err: unknown) =>
          this.d.logger?.warn("answering a lease of dependents failed", { input: nameOf(input), err }),
        );
      },
    };
  }

  /** The dependent's Running write, under its lock; undefined when it is not assigned now. */
  private assign(ns: string, name: string, pod: string, view: CallView): Promise<Started | undefined> {
    return this.d.store
      .withLock(callKey(ns, name), async (): Promise<Started | undefined> => {
        const cur = this.d.graph.get(ns, name);
        const now = this.d.clock.now();
        // Ready the moment its input ended (now): its queuedTime is the input's completionTime.
        const dec = decideAssignment(cur, view, pod, now, now);
        if (dec.type !== "assign" || !cur) return undefined;
        const done = await this.d.applier.apply(cur, dec.actions);
        if (!done.call || done.refused !== undefined) return undefined;
        const running = dec.actions[0]!.type === "status" ? dec.actions[0]!.patch : {};
        return { name, pod, attempt: dec.assignment.attempt, assignment: dec.assignment, before: cur, running };
      })
      .catch(() => undefined); // a failed Running write: the call stays as it was (its input's reaction queues it)
  }

  private async answer(
    ns: string,
    lease: LeaseWaiter,
    started: Promise<Started | undefined>[],
    persisted: boolean,
  ): Promise<void> {
    const done = (await Promise.all(started)).filter((s): s is Started => s !== undefined);
    if (persisted)
      return this.d.dispatcher.handOver(
        lease,
        done.map((s) => s.assignment),
      );
    this.d.dispatcher.handOver(lease, []);
    await Promise.all(done.map((s) => this.unassign(ns, s)));
  }

  /** The input's result was not persisted: the dependent's assignment is taken back, as it was. */
  private unassign(ns: string, s: Started): Promise<void> {
    return this.d.store.withLock(callKey(ns, s.name), async () => {
      const cur = this.d.graph.get(ns, s.name);
      if (!cur || phaseOf(cur) !== "Running" || cur.status?.pod !== s.pod || cur.status?.attempts !== s.attempt) return;
      await this.d.applier.apply(cur, [
        { type: "status", patch: unassignPatch(s.before.status, s.running) },
        { type: "release", pod: s.pod },
        { type: "reconcile", names: [s.name] },
      ]);
    });
  }
}
