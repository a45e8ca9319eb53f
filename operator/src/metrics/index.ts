// Prometheus metrics of the operator: one prom-client Registry, `trellis_` names, base units.
// Counters and histograms are fed by hooks (engine, work queues, runtime API); gauges of state
// (calls by phase, queue depth, pods) are computed at scrape time from the caches, so they are
// never out of step with the informers. No label ever carries a call or request name: the
// cardinality is bounded by namespaces × applications × functions.
import type { SweepHooks } from "../blobs/sweep.js";
import type { FastifyInstance } from "fastify";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { podFunction } from "../application/index.js";
import type { Pod, PodActivity } from "../application/index.js";
import { type Call, type EngineHooks, isRoot, isTerminal, phaseOf } from "../functioncall/index.js";
import type { Cache, InformerStats, WorkQueueHooks } from "../kube/index.js";

/** The parts of the engine the metrics read (a structural subset of `Engine`). */
export interface MetricsEngine {
  graph: {
    all(): Iterable<Call>;
    /** Calls by namespace, application, function and phase, keys joined by NUL. */
    countByPhase(): Map<string, number>;
    onChange(l: (key: string, prev: Call | undefined, next: Call | undefined) => void): void;
  };
  dispatcher: {
    queuedAndRunning(namespace: string, app: string, fn: string): { queued: number; running: number };
    podActivity(namespace: string, pod: string): PodActivity | undefined;
  };
}

export interface MetricsDeps {
  /** Process metrics (CPU, memory, event loop, GC); off in unit tests. */
  defaultMetrics?: boolean;
  /** Wall clock in ms (request durations use creationTimestamp). */
  now?: () => number;
}

export interface Metrics {
  registry: Registry;
  /** Pass into createEngine's `hooks` (merged with the controller's own hooks). */
  engineHooks: Required<Pick<EngineHooks, "dispatched" | "finished" | "settled">>;
  /** Hooks for the KeyedWorkQueue of one controller. */
  queueHooks(controller: string): WorkQueueHooks;
  /** Calls by phase, queue depth, end-to-end latency and retries come from the engine. */
  attachEngine(engine: MetricsEngine): void;
  /** Function pods by state, read at scrape time. */
  attachPods(pods: Cache<Pod>): void;
  attachQueue(name: string, queue: { length(): number }): void;
  /** Watch restarts of the informer(s) of one resource. */
  attachInformer(resource: string, informer: unknown): void;
  /**
   * Request counts and durations of a fastify server by route template (never the raw URL):
   * `trellis_<server>_requests_total{route,code}` and `trellis_<server>_request_duration_seconds{route}`.
   */
  instrumentServer(app: FastifyInstance, server?: ServerName): void;
  setLeader(leading: boolean): void;
  /** Pass into the orphan blob sweeper's `hooks`. */
  sweepHooks: SweepHooks;
  /** The text exposition, for a /metrics handler. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

/** The operator's HTTP servers: sidecars' runtime API, and the public invoke API. */
export type ServerName = "runtime_api" | "http_api";
const SERVER_HELP: Record<ServerName, string> = {
  runtime_api: "the runtime API (lease and wait are long polls)",
  http_api: "the HTTP invoke API (progress streams last as long as the request)",
};

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const REQUEST_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600];
const CALL_LABELS = ["namespace", "application", "function", "phase"] as const;

/** Informer stats of one informer or of a MultiNamespaceInformer's members. */
function informerStats(informer: unknown): InformerStats[] {
  const i = informer as { stats?: InformerStats; byNamespace?: Map<string, unknown> };
  if (i.stats) return [i.stats];
  if (i.byNamespace instanceof Map) return [...i.byNamespace.values()].flatMap(informerStats);
  return [];
}

/** A pod's state as an operator sees it: Kubernetes phase, with Running split by activity. */
export function podState(pod: Pod, activity: PodActivity | undefined): string {
  if (pod.metadata.deletionTimestamp) return "Terminating";
  const phase = pod.status?.phase ?? "Pending";
  if (phase !== "Running") return phase;
  if (!activity?.registered) return "Starting";
  return activity.running > 0 ? "Busy" : "Idle";
}

export function createMetrics(deps: MetricsDeps = {}): Metrics {
  const registry = new Registry();
  const now = deps.now ?? (() => Date.now());
  if (deps.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: "trellis_" });
  let engine: MetricsEngine | undefined;
  let pods: Cache<Pod> | undefined;
  const queues = new Map<string, { length(): number }>();
  const informers = new Map<string, unknown[]>();

  const callsTotal = new Counter({
    name: "trellis_function_calls_total",
    help: "Function calls that finished (Succeeded, Failed or Cancelled).",
    labelNames: CALL_LABELS,
    registers: [registry],
  });
  const settledTotal = new Counter({
    name: "trellis_function_calls_settled_total",
    help: "Tail-chain links settled: the chain's head took their outcome, so they never finish themselves.",
    labelNames: ["namespace", "application", "function"],
    registers: [registry],
  });
  new Gauge({
    name: "trellis_function_calls",
    help: "Function calls in the operator's cache by phase.",
    labelNames: CALL_LABELS,
    registers: [registry],
    collect() {
      this.reset();
      if (!engine) return;
      for (const [k, n] of engine.graph.countByPhase()) {
        const [namespace, application, fn, phase] = k.split("\0");
        this.set({ namespace, application, function: fn, phase }, n);
      }
    },
  });
  new Gauge({
    name: "trellis_queue_depth",
    help: "Ready calls waiting for a container, by function.",
    labelNames: ["namespace", "application", "function"],
    registers: [registry],
    collect() {
      this.reset();
      if (!engine) return;
      const seen = new Set<string>();
      for (const k of engine.graph.countByPhase().keys()) {
        const [ns, application, fn] = k.split("\0") as [string, string, string];
        const f = `${ns}\0${application}\0${fn}`;
        if (seen.has(f)) continue;
        seen.add(f);
        const { queued } = engine.dispatcher.queuedAndRunning(ns, application, fn);
        this.set({ namespace: ns, application, function: fn }, queued);
      }
    },
  });
  const dispatchLatency = new Histogram({
    name: "trellis_dispatch_latency_seconds",
    help: "Time a ready call waited in its queue before a container took it.",
    labelNames: ["application", "function"],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const requestDuration = new Histogram({
    name: "trellis_request_duration_seconds",
    help: "End-to-end duration of requests: root call created to finished.",
    labelNames: ["application", "phase"],
    buckets: REQUEST_BUCKETS,
    registers: [registry],
  });
  const retries = new Counter({
    name: "trellis_call_retries_total",
    help: "Attempts of calls that were run again, by reason (function_error, function_timeout, infrastructure).",
    labelNames: ["application", "function", "reason"],
    registers: [registry],
  });
  new Gauge({
    name: "trellis_pods",
    help: "Function pods by state (Pending, Starting, Idle, Busy, Terminating, Succeeded, Failed, Unknown).",
    labelNames: ["namespace", "application", "function", "state"],
    registers: [registry],
    collect() {
      this.reset();
      if (!pods) return;
      for (const p of pods.list()) {
        const application = p.metadata.labels?.["trellis.dev/application"];
        const fn = podFunction(p);
        if (!application || !fn) continue;
        const ns = p.metadata.namespace ?? "";
        const activity = engine?.dispatcher.podActivity(ns, p.metadata.name ?? "");
        this.inc({ namespace: ns, application, function: fn, state: podState(p, activity) });
      }
    },
  });
  const reconcileDuration = new Histogram({
    name: "trellis_reconcile_duration_seconds",
    help: "Duration of one reconcile, by controller.",
    labelNames: ["controller"],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const reconcileErrors = new Counter({
    name: "trellis_reconcile_errors_total",
    help: "Reconciles that threw (retried with backoff), by controller.",
    labelNames: ["controller"],
    registers: [registry],
  });
  const queueWait = new Histogram({
    name: "trellis_workqueue_wait_seconds",
    help: "Time a key waited in a work queue before its reconcile started.",
    labelNames: ["queue"],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: "trellis_workqueue_depth",
    help: "Keys waiting in a work queue.",
    labelNames: ["queue"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, q] of queues) this.set({ queue: name }, q.length());
    },
  });
  const servers = new Map<ServerName, { requests: Counter<"route" | "code">; duration: Histogram<"route"> }>();
  const serverMetrics = (server: ServerName) => {
    let m = servers.get(server);
    if (!m) {
      m = {
        requests: new Counter({
          name: `trellis_${server}_requests_total`,
          help: `Requests to ${SERVER_HELP[server]} by route template and status code.`,
          labelNames: ["route", "code"],
          registers: [registry],
        }),
        duration: new Histogram({
          name: `trellis_${server}_request_duration_seconds`,
          help: `Duration of requests to ${SERVER_HELP[server]} by route template.`,
          labelNames: ["route"],
          buckets: LATENCY_BUCKETS,
          registers: [registry],
        }),
      };
      servers.set(server, m);
    }
    return m;
  };
  serverMetrics("runtime_api");
  const leader = new Gauge({
    name: "trellis_leader",
    help: "1 while this replica holds the leader Lease.",
    registers: [registry],
  });
  leader.set(0);
  const sweepPasses = new Counter({
    name: "trellis_blob_sweep_passes_total",
    help: "Passes of the orphan blob sweep (the leader's; each looks at a bounded number of request prefixes).",
    registers: [registry],
  });
  const sweepExamined = new Counter({
    name: "trellis_blob_sweep_examined_total",
    help: "Request prefixes of the blob store the orphan sweep looked at.",
    registers: [registry],
  });
  const sweepRemoved = new Counter({
    name: "trellis_blob_sweep_removed_total",
    help: "Request prefixes removed by the orphan sweep: their request was gone for longer than the grace.",
    registers: [registry],
  });
  const sweepErrors = new Counter({
    name: "trellis_blob_sweep_errors_total",
    help: "Orphaned request prefixes whose removal failed (retried on a later pass).",
    registers: [registry],
  });
  // Informer stats are plain counters; the exported counter follows them by their increase.
  const lastRestarts = new Map<string, number>();
  new Counter({
    name: "trellis_watch_restarts_total",
    help: "Watches of a resource that ended (closed, silent or failed) and were started again.",
    labelNames: ["resource"],
    registers: [registry],
    collect() {
      for (const [resource, list] of informers) {
        const total = list
          .flatMap(informerStats)
          .reduce((n, s) => n + s.watchRestarts + s.watchdogRestarts + s.watchErrors + s.gone, 0);
        const delta = total - (lastRestarts.get(resource) ?? 0);
        this.inc({ resource }, Math.max(0, delta));
        lastRestarts.set(resource, total);
      }
    },
  });

  function onCallChange(prev: Call | undefined, next: Call | undefined): void {
    if (!prev || !next) return;
    countRetry(prev, next);
    if (isRoot(next) && isTerminal(next) && !isTerminal(prev)) {
      const created = new Date(next.metadata.creationTimestamp ?? NaN).getTime();
      if (Number.isFinite(created))
        requestDuration.observe(
          { application: next.spec.application, phase: phaseOf(next) },
          Math.max(0, now() - created) / 1000,
        );
    }
  }

  /** An attempt re-run after infrastructure loss, or a retry scheduled (a new retryAfter). */
  function countRetry(prev: Call, next: Call): void {
    const labels = { application: next.spec.application, function: next.spec.function };
    const ps = prev.status ?? {};
    const ns = next.status ?? {};
    if ((ns.infrastructureFailures ?? 0) > (ps.infrastructureFailures ?? 0))
      retries.inc({ ...labels, reason: "infrastructure" });
    else if ((ns.disruptions ?? 0) > (ps.disruptions ?? 0)) retries.inc({ ...labels, reason: "disruption" });
    else if (ns.retryAfter && ns.retryAfter !== ps.retryAfter)
      retries.inc({ ...labels, reason: ns.error?.reason ?? "function_error" });
  }

  return {
    registry,
    engineHooks: {
      dispatched: (_ns, application, fn, queuedMs) =>
        dispatchLatency.observe({ application, function: fn }, Math.max(0, queuedMs) / 1000),
      finished: (namespace, application, fn, phase) => callsTotal.inc({ namespace, application, function: fn, phase }),
      settled: (namespace, application, fn) => settledTotal.inc({ namespace, application, function: fn }),
    },
    queueHooks: (controller) => ({
      onStart: (_key, waitedMs) => queueWait.observe({ queue: controller }, Math.max(0, waitedMs) / 1000),
      onDone: (_key, durationMs, error) => {
        reconcileDuration.observe({ controller }, Math.max(0, durationMs) / 1000);
        if (error !== undefined) reconcileErrors.inc({ controller });
      },
    }),
    attachEngine(e) {
      engine = e;
      e.graph.onChange((_key, prev, next) => onCallChange(prev, next));
    },
    attachPods(p) {
      pods = p;
    },
    attachQueue(name, q) {
      queues.set(name, q);
      reconcileErrors.inc({ controller: name }, 0);
    },
    attachInformer(resource, informer) {
      informers.set(resource, [...(informers.get(resource) ?? []), informer]);
    },
    instrumentServer(app, server = "runtime_api") {
      const m = serverMetrics(server);
      app.addHook("onResponse", async (req, reply) => {
        const route = req.routeOptions.url ?? "unmatched";
        m.requests.inc({ route, code: String(reply.statusCode) });
        m.duration.observe({ route }, reply.elapsedTime / 1000);
      });
    },
    setLeader: (leading) => leader.set(leading ? 1 : 0),
    sweepHooks: {
      pass: (r) => {
        sweepPasses.inc();
        sweepExamined.inc(r.examined);
        sweepRemoved.inc(r.removed);
        sweepErrors.inc(r.errors);
      },
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
