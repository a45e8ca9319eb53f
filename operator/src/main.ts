// The operator process: the only place that knows the world. Parses the config, connects to the
// API server, serves the public HTTP API from its FunctionCall and Application caches (every
// replica does), takes the leader Lease, then runs the two controllers and the runtime API.
// Losing the Lease ends the process (a restarted replica starts clean).
import { randomBytes } from "node:crypto";
import {
  API_VERSION,
  type FunctionCall,
  type Logger,
  MANAGED_SELECTOR,
  UNSETTLED_SELECTOR,
  createLogger,
} from "../../protocol/index.js";
import { ApplicationController, applicationIndexers, applicationSettings } from "./application/index.js";
import type { ApplicationObject, Pod } from "./application/index.js";
import { type OperatorConfig, parseConfig } from "./config.js";
import { BlobSweeper, createBlobStore, waitForBlobStore } from "./blobs/index.js";
import { FUNCTION_CALL_INDEXERS, createEngine, podsGoneAtStart } from "./functioncall/index.js";
import {
  type Indexers,
  type Informer,
  KeyedWorkQueue,
  KubeEventRecorder,
  type KubeClient,
  KubeObjectWriter,
  type KubeObject,
  LeaderElector,
  connect,
  createInformer,
  isAlreadyExists,
  isNotFound,
  resourcePath,
} from "./kube/index.js";
import { CallWatch, KubernetesAuthorizer, allowAll, buildHttpApi, kubePodLog } from "./http-api/index.js";
import { kubeDeployStore } from "./http-api/deploy-store.js";
import { MultiNamespaceInformer } from "./kube/multi-informer.js";
import { type Fence, FencedError } from "./kube/fence.js";
import { createMetrics } from "./metrics/index.js";
import { buildMetricsServer } from "./metrics/server.js";
import { buildRuntimeApi, credentialKeyId, podToken } from "./runtime-api/index.js";
import { functionPodIdentity, podIdentityFromCache } from "./dispatch/pod-identity.js";

type ConfigMap = KubeObject & { data?: Record<string, string> };
type Secret = KubeObject & { data?: Record<string, string> };

/** Informers for every watched namespace (all when the list is empty). */
function informerFor<T extends KubeObject>(
  client: KubeClient,
  cfg: OperatorConfig,
  log: Logger,
  o: {
    apiVersion: string;
    kind: string;
    labelSelector?: string;
    pageSize?: number;
    indexers?: Indexers<T>;
    transform?: (obj: T) => T;
  },
): Informer<T> {
  if (cfg.watchNamespaces.length === 0) return createInformer<T>(client, { ...o, log });
  return new MultiNamespaceInformer(
    new Map(cfg.watchNamespaces.map((ns) => [ns, createInformer<T>(client, { ...o, namespace: ns, log })])),
  );
}

/**
 * The key Secret is owned by the leader Lease the chart installs, so uninstalling the release
 * removes it (the chart does not render the key: `helm template` stays deterministic and upgrades
 * keep it). Without that Lease (operator run outside the chart) the Secret has no owner.
 */
async function keyOwner(client: KubeClient, cfg: OperatorConfig): Promise<{ ownerReferences?: OwnerRef[] }> {
  const ref = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace: cfg.namespace, name: cfg.leaseName };
  try {
    const lease = await client.request<KubeObject>("GET", resourcePath(ref));
    const uid = lease.metadata.uid;
    return uid ? { ownerReferences: [{ apiVersion: ref.apiVersion, kind: ref.kind, name: ref.name, uid }] } : {};
  } catch (e) {
    if (isNotFound(e)) return {};
    throw e;
  }
}
type OwnerRef = NonNullable<KubeObject["metadata"]["ownerReferences"]>[number];

/** The HMAC key of the per-pod credentials, kept in a Secret so every replica and restart shares it. */
async function operatorKey(client: KubeClient, writer: KubeObjectWriter, cfg: OperatorConfig): Promise<Buffer> {
  const path = resourcePath({ apiVersion: "v1", kind: "Secret", namespace: cfg.namespace, name: cfg.keySecret });
  for (;;) {
    try {
      const s = await client.request<Secret>("GET", path);
      const key = s.data?.key;
      if (!key) throw new Error(`Secret ${cfg.namespace}/${cfg.keySecret} has no data.key`);
      return Buffer.from(key, "base64");
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    try {
      await writer.create<Secret>({
        apiVersion: "v1",
        kind: "Secret",
        metadata: {
          name: cfg.keySecret,
          namespace: cfg.namespace,
          labels: { "app.kubernetes.io/part-of": "trellis" },
          ...(await keyOwner(client, cfg)),
        },
        data: { key: randomBytes(32).toString("base64") },
      });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e; // another replica made it first: read theirs
    }
  }
}

/** The Service selects the leader's pod by this label, so sidecars and callers reach the leader only. */
const LEADER_LABEL = "trellis.dev/leader";

async function labelSelf(writer: KubeObjectWriter, cfg: OperatorConfig, leader: boolean, log: Logger): Promise<void> {
  if (!cfg.podName) return; // not running in a pod (tests, local development)
  try {
    await writer.patchMeta(
      { apiVersion: "v1", kind: "Pod", namespace: cfg.namespace, name: cfg.podName },
      { labels: { [LEADER_LABEL]: leader ? "true" : null } },
    );
  } catch (e) {
    if (leader) throw e;
    log.warn("could not clear the leader label of this pod", { err: e });
  }
}

async function run(cfg: OperatorConfig, log: Logger): Promise<void> {
  const client = await connect({ kubeconfig: cfg.kubeconfig, log });
  // `writer` serves the HTTP API and standby chores; the controllers, the dispatcher and their
  // Events write through `leaderWriter`, fenced to this replica's leadership (kube/README.md).
  const writer = new KubeObjectWriter(client);
  let fence: Fence = cfg.leaderElection
    ? (what) => {
        throw new FencedError(what, "it has not led");
      }
    : () => {};
  const leaderWriter = new KubeObjectWriter(client, undefined, { fence: (what) => fence(what) });
  const events = new KubeEventRecorder({ writer: leaderWriter, log });
  let leading = !cfg.leaderElection;
  let ready = false;
  const metrics = createMetrics();

  // Liveness, readiness, metrics and the invoke API first, so a standby answers its probes while
  // it waits. Every replica serves the public HTTP API from its own FunctionCall and Application
  // caches and the shared blob store, so a restart or failover of the leader never takes the API
  // down; only the leader reconciles and dispatches.
  const callWatch = new CallWatch();
  if (cfg.http.auth === "none")
    log.warn("TRELLIS_HTTP_AUTH=none: the invoke API accepts anyone; use this for local development only");
  const metricsServer = buildMetricsServer(metrics);
  await metricsServer.listen({ host: cfg.metrics.host, port: cfg.metrics.port });
  const store = createBlobStore(cfg.blobs);
  const blobs = store.store;
  // The engine's graph already holds the version its own write returned when the watch delivers
  // it again: the cache takes the graph's object, so one copy of each version stays in memory (a
  // shard of 500 items is ~150 KiB of heap).
  const heldByGraph: { version?: (c: FunctionCall & KubeObject) => (FunctionCall & KubeObject) | undefined } = {};
  const calls = informerFor<FunctionCall & KubeObject>(client, cfg, log, {
    apiVersion: API_VERSION,
    kind: "FunctionCall",
    // A shard's object is up to ~60 KB of JSON: 100 per page keeps a page's JSON and its parsed
    // copy to a few MiB during a relist (each unchanged object gives way to the graph's copy as
    // its page arrives).
    pageSize: 100,
    // Tail links a chain has passed are settled: nothing reads them again (etcd keeps them).
    labelSelector: UNSETTLED_SELECTOR,
    indexers: FUNCTION_CALL_INDEXERS,
    transform: (c) => {
      delete (c.metadata as { managedFields?: unknown }).managedFields;
      return heldByGraph.version?.(c) ?? c;
    },
  });
  const applications = informerFor<ApplicationObject>(client, cfg, log, {
    apiVersion: API_VERSION,
    kind: "Application",
  });
  calls.onEvent(callWatch.onEvent);
  let cachesReady = false;
  const health = await buildHttpApi({
    calls,
    applications,
    watchCall: callWatch.watch,
    watchRequest: callWatch.watchRequest,
    createCall: (c) => writer.create(c),
    getCall: async (namespace, name) => {
      try {
        return await client.request<FunctionCall & KubeObject>(
          "GET",
          resourcePath({ apiVersion: API_VERSION, kind: "FunctionCall", namespace, name }),
        );
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
    },
    deleteCall: (namespace, name) =>
      writer.delete({ apiVersion: API_VERSION, kind: "FunctionCall", namespace, name }, { propagation: "Background" }),
    blobs,
    deploy: kubeDeployStore(client),
    podLog: kubePodLog(client),
    authorizer:
      cfg.http.auth === "none" ? allowAll : new KubernetesAuthorizer(client, { audiences: cfg.http.tokenAudiences }),
    forwardHeaders: cfg.http.forwardHeaders,
    sse: cfg.http.sse,
    log,
    bodyLimit: cfg.http.bodyLimit,
    maxFileBytes: cfg.http.maxFileBytes,
    // The v1 routes answer 503 until the blob store answers and the caches are synced.
    serving: () => cachesReady,
    // Ready once it serves the HTTP API (a standby too: it may take over, and the API Service
    // reaches every replica); a leader once it also dispatches.
    readiness: () => ({ ok: cachesReady && (!leading || ready), leading }),
  });
  await health.listen({ host: cfg.http.host, port: cfg.http.port });
  // A process restarted in a pod that led before must not keep the leader label while standby.
  await labelSelf(writer, cfg, false, log);
  await waitForBlobStore(store, log);
  await Promise.all([calls.start(), applications.start()]);
  cachesReady = true;
  log.info("serving the HTTP API", { blobs: store.where });

  if (cfg.leaderElection) {
    let started: () => void = () => {};
    const gotLease = new Promise<void>((resolve) => (started = resolve));
    // Renewals get their own connections: a pool busy with slow writes must not delay them past
    // the renew deadline.
    const leaseClient = await connect({ kubeconfig: cfg.kubeconfig, log, maxSockets: 2 });
    const elector = new LeaderElector({
      writer: new KubeObjectWriter(leaseClient),
      namespace: cfg.namespace,
      name: cfg.leaseName,
      identity: cfg.identity,
      log,
      onStartedLeading: () => started(),
      onStoppedLeading: () => {
        log.error("lost the leader lease: exiting so that a fresh process takes over");
        process.exit(1);
      },
    });
    fence = elector.fence;
    elector.start();
    log.info("waiting for the leader lease", { lease: `${cfg.namespace}/${cfg.leaseName}`, identity: cfg.identity });
    await gotLease;
    leading = true;
    process.once("SIGTERM", () => void elector.stop());
  }
  log.info("leading", { identity: cfg.identity });
  metrics.setLeader(true);

  const key = await operatorKey(client, writer, cfg);
  const pods = informerFor<Pod>(client, cfg, log, {
    apiVersion: "v1",
    kind: "Pod",
    labelSelector: MANAGED_SELECTOR,
    indexers: applicationIndexers,
  });
  const configMaps = informerFor<ConfigMap>(client, cfg, log, {
    apiVersion: "v1",
    kind: "ConfigMap",
    labelSelector: MANAGED_SELECTOR,
    indexers: applicationIndexers,
  });

  const callQueue = new KeyedWorkQueue({
    name: "functioncalls",
    log,
    hooks: metrics.queueHooks("functioncalls"),
    resultsOwnTimers: true,
  });
  const appQueue = new KeyedWorkQueue({ name: "applications", log, hooks: metrics.queueHooks("applications") });
  metrics.attachQueue("functioncalls", callQueue);
  metrics.attachQueue("applications", appQueue);
  for (const [resource, i] of Object.entries({ functioncalls: calls, applications, pods, configmaps: configMaps }))
    metrics.attachInformer(resource, i);
  // The engine and the Application controller call each other; the engine is made first.
  const late: { appCtl?: ApplicationController } = {};
  const engine = createEngine({
    calls,
    applications,
    writer: leaderWriter,
    events,
    queue: callQueue,
    blobs,
    onDiscovered: (ns, app) => late.appCtl?.onBacklogChanged(ns, app),
    onCodeLoadFailure: (ns, app, pod, failure) => {
      const obj = applications.get(`${ns}/${app}`);
      if (obj)
        events.record(
          obj,
          "Warning",
          "CodeLoadFailed",
          `pod ${pod}: ${failure.error?.message ?? "the code failed to load"}`,
        );
      late.appCtl?.onBacklogChanged(ns, app);
    },
    hooks: {
      ...metrics.engineHooks,
      backlogChanged: (ns, app) => late.appCtl?.onBacklogChanged(ns, app),
      podActivityChanged: (ns, pod) => late.appCtl?.onPodActivityChanged(ns, pod),
    },
    config: {
      ...(cfg.heartbeatTimeoutMs ? { heartbeatTimeoutMs: cfg.heartbeatTimeoutMs } : {}),
      defaultRequestTtlSeconds: cfg.requestTtlSeconds,
    },
    logger: log,
  });
  heldByGraph.version = (c) => {
    const held = engine.graph.get(c.metadata.namespace ?? "", c.metadata.name ?? "");
    return held?.metadata.resourceVersion === c.metadata.resourceVersion ? held : undefined;
  };
  const appCtl = new ApplicationController({
    applications,
    pods,
    configMaps,
    writer: leaderWriter,
    events,
    clock: { now: () => Date.now() },
    dispatcher: engine.dispatcher,
    queue: appQueue,
    issueToken: (pod) => {
      const id = functionPodIdentity(pod);
      return typeof id === "string"
        ? undefined
        : podToken(key, pod.metadata.namespace ?? "", pod.metadata.name ?? "", id.uid);
    },
    settings: applicationSettings.parse({
      runtimeImage: cfg.runtimeImage,
      runtimeImagePullPolicy: cfg.runtimeImagePullPolicy,
      operatorUrl: cfg.operatorUrl,
      hostNetwork: cfg.hostNetwork,
      idleTimeoutSeconds: cfg.idleTimeoutSeconds,
      nodeLossTolerationSeconds: cfg.nodeLossTolerationSeconds,
      credentialKeyId: credentialKeyId(key),
      reservedSecrets: [`${cfg.namespace}/${cfg.keySecret}`],
    }),
    log,
  });
  late.appCtl = appCtl;
  const runtimeApi = buildRuntimeApi(engine.runtimePort, {
    operatorKey: key,
    podIdentity: podIdentityFromCache(pods),
    blobs,
    logger: log,
  });
  metrics.attachEngine(engine);
  metrics.attachPods(pods);
  metrics.instrumentServer(runtimeApi);
  pods.onEvent((type, pod) => {
    if (type === "DELETED") engine.podGone(pod.metadata.namespace ?? "", pod.metadata.name ?? "");
  });

  await Promise.all([pods.start(), configMaps.start()]);
  // The Application cache was synced before the controller subscribed: every one is looked at once.
  for (const a of applications.list()) appQueue.add(`${a.metadata.namespace ?? ""}/${a.metadata.name ?? ""}`);
  for (const { namespace, pod } of podsGoneAtStart(calls.list(), (ns, p) => pods.get(`${ns}/${p}`) !== undefined))
    engine.podGone(namespace, pod);
  engine.start();
  // Blobs of requests deleted while no operator led (their root's disappearance was never seen).
  new BlobSweeper({
    store: blobs,
    requestExists: (ns, request) => calls.get(`${ns}/${request}`) !== undefined,
    ...cfg.blobSweep,
    hooks: metrics.sweepHooks,
    log,
  }).start();
  callQueue.run(engine.reconciler, cfg.callWorkers);
  appQueue.run(appCtl.reconcile, cfg.appWorkers);
  await runtimeApi.listen({ host: cfg.runtimeApi.host, port: cfg.runtimeApi.port });
  ready = true;
  await labelSelf(leaderWriter, cfg, true, log);
  log.info("operator ready", {
    runtimeApi: `${cfg.runtimeApi.host}:${cfg.runtimeApi.port}`,
    operatorUrl: cfg.operatorUrl,
  });

  const shutdown = async (signal: string) => {
    log.info("shutting down", { signal });
    ready = false;
    await runtimeApi.close();
    await Promise.all([callQueue.shutdown(), appQueue.shutdown()]);
    for (const i of [calls, applications, pods, configMaps]) i.stop();
    await engine.stop();
    await health.close();
    await metricsServer.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
}

const cfg = (() => {
  try {
    return parseConfig();
  } catch (e) {
    console.error(String((e as Error).message));
    process.exit(2);
  }
})();
const log = createLogger({ level: cfg.logLevel });
run(cfg, log).catch((e: unknown) => {
  log.error("operator failed", { err: e });
  process.exit(1);
});
