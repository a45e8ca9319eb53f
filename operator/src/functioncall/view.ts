// The views decisions read, built from the graph, the Application cache and the dispatcher.
import type { Application } from "../../../protocol/index.js";
import type { Dispatcher } from "../dispatch/index.js";
import type { Cache, KubeObject } from "../kube/index.js";
import type { CallView, ItemsResult } from "./actions.js";
import { type Call, callKey, refOf } from "./calls.js";
import type { EngineConfig } from "./config.js";
import type { GraphIndex } from "./decide-graph.js";
import type { CallGraph } from "./graph.js";
import { type CallPolicy, type DiscoveredSettings, resolvePolicy } from "./policy.js";
import { inlineItems } from "./values.js";
import type { Waiters } from "./waiters.js";

export type ApplicationObject = Application & KubeObject;

export interface ViewDeps {
  graph: CallGraph;
  applications: Cache<ApplicationObject>;
  dispatcher: Dispatcher;
  config: EngineConfig;
  /** List outputs read from blobs, by call key (filled by the apply step's loadItems). */
  itemsCache: Map<string, ItemsResult>;
  /** When this engine started (ms): it took over then. */
  startedAt: number;
  /** Calls pods wait on. */
  waiters: Pick<Waiters, "has">;
}

export function policyOf(d: Pick<ViewDeps, "applications" | "dispatcher" | "config">, call: Call): CallPolicy {
  const ns = call.metadata.namespace ?? "";
  const app = d.applications.get(`${ns}/${call.spec.application}`);
  type Entry = DiscoveredSettings & { name: string; application?: boolean };
  const table: Entry[] = d.dispatcher.pods.discoveredTable(ns, call.spec.application) ?? app?.status?.discovered ?? [];
  const own = table.find((f) => f.name === call.spec.function);
  // A function without retries of its own takes the application's (carried by the entry point).
  const appLevel = table.find((f) => f.application);
  const retries = own?.retries ?? appLevel?.retries;
  const discovered: DiscoveredSettings = {};
  if (own?.timeoutSeconds !== undefined) discovered.timeoutSeconds = own.timeoutSeconds;
  if (retries !== undefined) discovered.retries = retries;
  return resolvePolicy(call, app, discovered, d.config.defaultTimeoutSeconds);
}

export function makeView(namespace: string, d: ViewDeps): CallView {
  const { graph, config } = d;
  return {
    namespace,
    call: (n) => graph.get(namespace, n),
    children: (p) =>
      graph
        .childrenOf(namespace, p)
        .map((n) => graph.get(namespace, n))
        .filter((c): c is Call => c !== undefined),
    delegatorsOf: (n) => graph.delegatorsOf(namespace, n),
    dependentsOf: (n) => graph.dependentsOf(namespace, n),
    waitedOn: (n) => d.waiters.has(namespace, n),
    childOutputs: (p, n) => graph.childOutputs(namespace, p, n),
    childStats: (p) => graph.childStats(namespace, p),
    requestError: (r) => graph.requestErrorOf(namespace, r),
    policy: (c) => policyOf(d, c),
    pod: (pod, call, attempt) => d.dispatcher.pods.attemptState(namespace, pod, call, attempt),
    queued: (c) => d.dispatcher.isQueued(refOf(c)),
    items: (n) => {
      const inline = inlineItems(graph.get(namespace, n)?.status?.output);
      if (inline) return inline;
      return d.itemsCache.get(callKey(namespace, n)) ?? { loading: true };
    },
    ttlSecondsAfterFinished: (c) =>
      d.applications.get(`${namespace}/${c.spec.application}`)?.spec.requests?.ttlSecondsAfterFinished ??
      config.defaultRequestTtlSeconds,
    timeoutGraceMs: config.timeoutGraceMs,
    reportGraceUntil: d.startedAt + config.takeoverGraceMs,
    infrastructureRetries: config.infrastructureRetries,
    disruptionRetries: config.disruptionRetries,
    inlineValueLimitBytes: config.inlineValueLimitBytes,
    maxCallSpecBytes: config.maxCallSpecBytes,
    shardMinItems: config.shardMinItems,
  };
}

/** The graph's relations in one namespace, for graph reactions. */
export function graphIndex(graph: CallGraph, namespace: string): GraphIndex {
  return {
    call: (n) => graph.get(namespace, n),
    dependentsOf: (n) => graph.dependentsOf(namespace, n),
    delegatorsOf: (n) => graph.delegatorsOf(namespace, n),
    childrenOf: (n) => graph.childrenOf(namespace, n),
    callsOfRequest: (r) => graph.callsOfRequest(namespace, r),
  };
}
