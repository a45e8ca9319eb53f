// createEngine: the FunctionCall engine, wired from narrow dependencies. main.ts builds the deps
// (informers, writer, queue, blob store), runs the queue with `engine.reconciler`, and serves
// `engine.runtimePort` through buildRuntimeApi.
import type { FunctionCall, Logger } from "../../../protocol/index.js";
import type { BlobStore } from "../blobs/index.js";
import { Dispatcher } from "../dispatch/index.js";
import type {
  Cache,
  Clock,
  EventRecorder,
  Informer,
  KubeObject,
  ObjectWriter,
  Reconciler,
  WorkQueue,
} from "../kube/index.js";
import type { RuntimePort } from "../runtime-api/index.js";
import type { ItemsResult } from "./actions.js";
import { Applier } from "./apply.js";
import { callKey, nameOf, namespaceOf, phaseOf, runningAttemptOf } from "./calls.js";
import { type EngineConfig, engineConfig } from "./config.js";
import { CallController } from "./controller.js";
import { decideGraphChange } from "./decide-graph.js";
import { DependentsAtResult } from "./dependents-at-result.js";
import { CallGraph } from "./graph.js";
import type { EngineHooks } from "./hooks.js";
import { ProgressThrottle } from "./progress.js";
import { type RuntimePortDeps, createRuntimePort } from "./runtime-port.js";
import { CallStore } from "./store.js";
import { type ApplicationObject, graphIndex, makeView } from "./view.js";
import { Waiters } from "./waiters.js";
import { WaitingMarker } from "./waiting-marker.js";

export type { EngineHooks };

export interface EngineDeps {
  /** FunctionCall informer (all namespaces the operator serves). */
  calls: Informer<FunctionCall & KubeObject>;
  applications: Cache<ApplicationObject>;
  writer: ObjectWriter;
  events: EventRecorder;
  /** The FunctionCall work queue; main runs it with `engine.reconciler`. */
  queue: WorkQueue;
  blobs: BlobStore;
  /** Function table a sidecar reported at register (the Application controller records it). */
  onDiscovered?: RuntimePortDeps["onDiscovered"];
  /** A pod's worker could not import the code (the Application controller shows CodeLoaded=False). */
  onCodeLoadFailure?: RuntimePortDeps["onCodeLoadFailure"];
  /** Metrics hooks (main.ts wires them to prom-client). */
  hooks?: EngineHooks;
  clock?: Clock;
  config?: Partial<EngineConfig>;
  logger?: Logger;
}

export interface Engine {
  config: EngineConfig;
  graph: CallGraph;
  store: CallStore;
  dispatcher: Dispatcher;
  waiters: Waiters;
  controller: CallController;
  reconciler: Reconciler;
  /** What the runtime API serves: main.ts passes it to buildRuntimeApi. */
  runtimePort: RuntimePort;
  /** Loads the informer's current list into the graph and queues every call (after it synced). */
  start(): void;
  /** For /metrics (read at scrape time): calls by phase and function, writes, assignments, waiters. */
  stats(): EngineStats;
  /** A function pod was deleted (from the pod informer): its running calls are re-run. */
  podGone(namespace: string, pod: string): void;
  stop(): Promise<void>;
}

export interface EngineStats {
  /** Calls in the cache by "namespace/application/function" and phase. */
  calls: Map<string, Record<string, number>>;
  writes: number;
  assignments: number;
  /** Calls someone waits on through /wait. */
  waitedCalls: number;
}

const systemClock: Clock = { now: () => Date.now() };

export function createEngine(deps: EngineDeps): Engine {
  const config = engineConfig.parse(deps.config ?? {});
  const clock = deps.clock ?? systemClock;
  const { queue, hooks } = deps;
  const graph = new CallGraph();
  const store = new CallStore(deps.writer, graph, config.shardCommitMs);
  const itemsCache = new Map<string, ItemsResult>();
  const startedAt = clock.now();
  const dispatcher: Dispatcher = new Dispatcher({
    clock,
    config,
    start: (pod, name, readyAt) => controller.start(pod, name, readyAt),
    runningAttempt: (ns, name) => runningAttemptOf(graph.get(ns, name)),
    onLost: (keys) => keys.forEach((k) => queue.add(k)),
    onBacklog: hooks?.backlogChanged,
    onPodActivity: hooks?.podActivityChanged,
  });
  const view = (ns: string) =>
    makeView(ns, { graph, applications: deps.applications, dispatcher, config, itemsCache, startedAt, waiters });
  const waiters = new Waiters((ns, n) => graph.get(ns, n));
  const marker = new WaitingMarker(config.waitingPhaseWriteAfterMs, clock, (t) => controller.markWaiting(t));
  const progress = new ProgressThrottle(
    config.progressWriteIntervalMs,
    () => clock.now(),
    (key, p) => controller.writeProgress(key, p),
  );
  const { events, blobs, logger } = deps;
  const applier = new Applier({
    graph,
    store,
    dispatcher,
    marker,
    queue,
    events,
    blobs,
    waiters,
    progress,
    itemsCache,
    config,
    hooks,
    logger,
    clock,
  });
  const controller: CallController = new CallController({ graph, store, applier, clock, view });

  graph.onChange((_key, prev, next) => {
    const c = (next ?? prev)!;
    applier.effects(c, decideGraphChange(prev, next, graphIndex(graph, namespaceOf(c))));
  });
  deps.calls.onEvent((type, obj) => {
    if (type === "DELETED") graph.remove(obj);
    else if (graph.observe(obj)) queue.add(callKey(namespaceOf(obj), nameOf(obj)));
  });

  const runtimePort = createRuntimePort({
    config,
    clock,
    graph,
    store,
    dispatcher,
    waiters,
    progress,
    applier,
    view,
    dependents: new DependentsAtResult({
      graph,
      store,
      applier,
      dispatcher,
      clock,
      inlineValueLimitBytes: config.inlineValueLimitBytes,
      logger: deps.logger,
    }),
    onDiscovered: deps.onDiscovered,
    onCodeLoadFailure: deps.onCodeLoadFailure,
  });

  return {
    config,
    graph,
    store,
    dispatcher,
    waiters,
    controller,
    reconciler: controller.reconcile,
    runtimePort,
    start() {
      for (const c of deps.calls.list()) graph.observe(c);
    },
    podGone: (ns, pod) => dispatcher.pods.podGone(ns, pod),
    stats() {
      const calls = new Map<string, Record<string, number>>();
      for (const c of graph.all()) {
        const k = `${namespaceOf(c)}/${c.spec.application}/${c.spec.function}`;
        let byPhase = calls.get(k);
        if (!byPhase) calls.set(k, (byPhase = {}));
        const p = phaseOf(c);
        byPhase[p] = (byPhase[p] ?? 0) + 1;
      }
      return { calls, writes: store.writes, assignments: dispatcher.assignments, waitedCalls: waiters.size() };
    },
    async stop() {
      marker.stop();
      dispatcher.stop();
    },
  };
}
