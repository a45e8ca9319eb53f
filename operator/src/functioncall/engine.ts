// createEngine: the FunctionCall engine and the runtime API, wired from narrow dependencies.
// main.ts builds the deps (informers, writer, queue, blob store, key) and runs the queue with
// `engine.reconciler`; it listens with `engine.runtimeApi`.
import type { FastifyInstance } from "fastify";
import type { FunctionCall, Logger } from "../../../protocol/index.js";
import type { DispatcherView } from "../application/types.js";
import type {
  Cache,
  Clock,
  EventRecorder,
  Informer,
  KubeObject,
  ObjectWriter,
  Reconciler,
  WorkQueue,
} from "../kube/types.js";
import { type BlobStore, requestPrefix } from "../runtime-api/blobstore.js";
import { type RuntimeApiDeps, buildRuntimeApi } from "../runtime-api/server.js";
import type { ItemsResult } from "./actions.js";
import {
  type Call,
  callKey,
  isCollection,
  isDeleting,
  isRoot,
  isTerminal,
  nameOf,
  namespaceOf,
  phaseOf,
  requestOf,
} from "./calls.js";
import { type EngineConfig, engineConfig } from "./config.js";
import { CallController } from "./controller.js";
import { Dispatcher } from "./dispatcher.js";
import { CallGraph } from "./graph.js";
import { ProgressThrottle } from "./progress.js";
import { CallStore } from "./store.js";
import { type ApplicationObject, makeView, policyOf } from "./view.js";
import { Waiters } from "./waiters.js";

export interface EngineDeps {
  /** FunctionCall informer (all namespaces the operator serves). */
  calls: Informer<FunctionCall & KubeObject>;
  applications: Cache<ApplicationObject>;
  writer: ObjectWriter;
  events: EventRecorder;
  /** The FunctionCall work queue; main runs it with `engine.reconciler`. */
  queue: WorkQueue;
  blobs: BlobStore;
  /** Secret key of the per-pod credentials (token = HMAC-SHA256(key, "<namespace>/<pod>")). */
  operatorKey: string | Uint8Array;
  /** Application and function of a function pod (from its labels), undefined for other pods. */
  podIdentity: (namespace: string, pod: string) => { application: string; function: string } | undefined;
  /** Function table a sidecar reported at register (the Application controller records it). */
  onDiscovered?: (
    namespace: string,
    application: string,
    functions: import("../application/types.js").DiscoveredFunction[],
  ) => void;
  /** A pod's worker could not import the code (the Application controller shows CodeLoaded=False). */
  onCodeLoadFailure?: RuntimeApiDeps["onCodeLoadFailure"];
  /** Metrics hooks (main.ts wires them to prom-client). */
  hooks?: EngineHooks;
  clock?: Clock;
  config?: Partial<EngineConfig>;
  logger?: Logger;
}

export interface EngineHooks {
  /** A call was assigned to a pod after waiting `queuedMs` ready in its queue. */
  dispatched?(namespace: string, application: string, fn: string, queuedMs: number): void;
  /** A call reached Succeeded, Failed or Cancelled. */
  finished?(namespace: string, application: string, fn: string, phase: string): void;
  /** Queued or running counts of an application changed: ApplicationController.onBacklogChanged. */
  backlogChanged?(namespace: string, application: string): void;
  /** A pod registered, went busy or idle: ApplicationController.onPodActivityChanged. */
  podActivityChanged?(namespace: string, pod: string): void;
}

export interface Engine {
  config: EngineConfig;
  graph: CallGraph;
  store: CallStore;
  dispatcher: Dispatcher & DispatcherView;
  waiters: Waiters;
  controller: CallController;
  reconciler: Reconciler;
  runtimeApi: FastifyInstance;
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

/** The parts of the engine the runtime API uses. */
export interface EngineCore {
  config: EngineConfig;
  clock: Clock;
  graph: CallGraph;
  store: CallStore;
  dispatcher: Dispatcher;
  waiters: Waiters;
  controller: CallController;
  blobs: BlobStore;
  progress: ProgressThrottle;
  policy: (call: Call) => ReturnType<typeof policyOf>;
  queue: WorkQueue;
  events: EventRecorder;
  logger?: Logger;
}

const systemClock: Clock = { now: () => Date.now() };

export function createEngine(deps: EngineDeps): Engine {
  const config = engineConfig.parse(deps.config ?? {});
  const clock = deps.clock ?? systemClock;
  const graph = new CallGraph();
  const store = new CallStore(deps.writer, graph);
  const itemsCache = new Map<string, ItemsResult>();
  const queue = deps.queue;
  const enqueueKeys = (keys: string[]) => keys.forEach((k) => queue.add(k));
  const policy = (c: Call) => policyOf({ applications: deps.applications, dispatcher, config }, c);
  const dispatcher: Dispatcher = new Dispatcher({
    graph,
    store,
    clock,
    config,
    policy,
    onLost: enqueueKeys,
    onDispatched: deps.hooks?.dispatched,
    onBacklog: deps.hooks?.backlogChanged,
    onPodActivity: deps.hooks?.podActivityChanged,
  });
  const waiters = new Waiters((ns, n) => graph.get(ns, n));
  const view = (ns: string) => makeView(ns, { graph, applications: deps.applications, dispatcher, config, itemsCache });
  const controller = new CallController({
    graph,
    store,
    dispatcher,
    queue,
    events: deps.events,
    blobs: deps.blobs,
    clock,
    config,
    view,
    itemsCache,
    logger: deps.logger,
  });
  const progress = new ProgressThrottle(
    config.progressWriteIntervalMs,
    () => clock.now(),
    (key, p) =>
      store.withLock(key, async () => {
        const cur = graph.getKey(key);
        if (cur && phaseOf(cur) === "Running") await store.patchStatus(cur, { progress: p });
      }),
  );

  graph.onChange((key, prev, next) => onGraphChange(key, prev, next));
  function onGraphChange(key: string, prev: Call | undefined, next: Call | undefined): void {
    const c = (next ?? prev)!;
    const ns = namespaceOf(c);
    const name = nameOf(c);
    if (!prev) queue.add(key);
    const prevPod = prev?.status?.pod;
    if (
      prev &&
      phaseOf(prev) === "Running" &&
      prevPod !== undefined &&
      (!next ||
        phaseOf(next) !== "Running" ||
        next.status?.pod !== prevPod ||
        next.status?.attempts !== prev.status?.attempts)
    )
      dispatcher.pods.release(ns, prevPod, name);
    if (next && prev) {
      const p = phaseOf(next);
      // Running arms the operator's timeout; Delegated may find its tail already finished.
      if ((p === "Running" || p === "Delegated") && phaseOf(prev) !== p) queue.add(key);
      if (isDeleting(next) && !isDeleting(prev)) queue.add(key);
    }
    const finished = !next || (isTerminal(next) && !(prev && isTerminal(prev)));
    if (!finished || !prev) return;
    waiters.notify(ns, name);
    progress.forget(key);
    if (next) deps.hooks?.finished?.(ns, c.spec.application, c.spec.function, phaseOf(next));
    dispatcher.dequeue(ns, name, c.spec.application, c.spec.function);
    const add = (n: string) => queue.add(callKey(ns, n));
    graph.dependentsOf(ns, name).forEach(add);
    graph.delegatorsOf(ns, name).forEach(add);
    const parent = c.spec.parent ? graph.get(ns, c.spec.parent) : undefined;
    if (parent && isCollection(parent)) add(c.spec.parent!);
    if (next && isRoot(c)) queue.add(key); // its TTL
    if (!next) itemsCache.delete(key);
    // A deleted request takes its blobs (outputs, uploads, state) with it.
    if (!next && isRoot(c))
      void deps.blobs
        .deletePrefix(requestPrefix(ns, name))
        .catch((err: unknown) => deps.logger?.warn("deleting a request's blobs failed", { request: key, err }));
    const failed = !next || phaseOf(next) === "Failed" || phaseOf(next) === "Cancelled";
    if (failed && isRoot(c)) graph.callsOfRequest(ns, name).forEach(add);
    if (failed && isCollection(c)) graph.childrenOf(ns, name).forEach(add);
    if (next?.status?.error?.reason === "request_error" && phaseOf(next) === "Failed") add(requestOf(c));
  }

  deps.calls.onEvent((type, obj) => {
    if (type === "DELETED") graph.remove(obj);
    else if (graph.observe(obj)) queue.add(callKey(namespaceOf(obj), nameOf(obj)));
  });

  const core: EngineCore = {
    config,
    clock,
    graph,
    store,
    dispatcher,
    waiters,
    controller,
    blobs: deps.blobs,
    progress,
    policy,
    queue,
    events: deps.events,
    logger: deps.logger,
  };
  const runtimeApi = buildRuntimeApi({
    core,
    operatorKey: deps.operatorKey,
    podIdentity: deps.podIdentity,
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
    runtimeApi,
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
      controller.marker.stop();
      dispatcher.stop();
      await runtimeApi.close();
    },
  };
}
