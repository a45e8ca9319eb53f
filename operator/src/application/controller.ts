// The Application reconciler: reads the caches and the dispatcher, calls the pure
// decideApplication, and applies its actions through the writer and the event recorder.
import { RefusalHold, isAlreadyExists, isConflict, isNotFound, isPermanent, refusalMessage } from "../kube/errors.js";
import { API_VERSION, LABEL, type Logger, silentLogger } from "../../../protocol/index.js";
import type {
  Clock,
  EventRecorder,
  Informer,
  KubeObject,
  ObjectKey,
  ObjectWriter,
  ReconcileResult,
  WorkQueue,
} from "../kube/types.js";
import { splitKey } from "../kube/types.js";
import { decideApplication, type Action } from "./decide-application.js";
import { podSecretName, randomPodSuffix } from "./names.js";
import { buildFunctionPod, buildPodSecret } from "./pod-builder.js";
import type { ApplicationSettings } from "./settings.js";
import type { ApplicationObject, ConfigMap, DispatcherView, Pod } from "./types.js";

/** Index the Pod and ConfigMap informers must declare: "<namespace>/<application>". */
export const APPLICATION_INDEX = "trellis.dev/application";
export const applicationIndexers = {
  [APPLICATION_INDEX]: (o: KubeObject): string[] => {
    const app = o.metadata.labels?.[LABEL.application];
    return app ? [`${o.metadata.namespace ?? ""}/${app}`] : [];
  },
};

export interface ApplicationControllerDeps {
  applications: Informer<ApplicationObject>;
  /** Label-filtered on app.kubernetes.io/managed-by=trellis, with `applicationIndexers`. */
  pods: Informer<Pod>;
  /** Label-filtered on app.kubernetes.io/managed-by=trellis, with `applicationIndexers`. */
  configMaps: Informer<ConfigMap>;
  writer: ObjectWriter;
  events: EventRecorder;
  clock: Clock;
  dispatcher: DispatcherView;
  queue: Pick<WorkQueue, "add" | "addAfter">;
  /**
   * The per-pod credential, bound to the pod's uid (runtime-api credentials); undefined for a pod
   * the operator did not create (no token is ever issued for it).
   */
  issueToken(pod: Pod): string | undefined;
  settings: ApplicationSettings;
  random?: () => number;
  log?: Logger;
}

/** Objects written but not yet seen by an informer; counted so that a quick second reconcile does not overshoot. */
const EXPECTATION_TTL_MS = 60_000;
interface Expected<T> {
  obj: T;
  at: number;
}

const POD_REF = { apiVersion: "v1", kind: "Pod" } as const;
const CM_REF = { apiVersion: "v1", kind: "ConfigMap" } as const;

/** Counters for the metrics module. */
export interface ApplicationControllerStats {
  reconciles: number;
  podsCreated: number;
  podsDeleted: Record<"idle" | "failed" | "outdated", number>;
  statusWrites: number;
  statusWritesDeferred: number;
}

/** A backlog change's reconcile waits for the next timers phase (see onBacklogChanged). */
const BACKLOG_KICK_MS = 1;

export class ApplicationController {
  readonly stats: ApplicationControllerStats = {
    reconciles: 0,
    podsCreated: 0,
    podsDeleted: { idle: 0, failed: 0, outdated: 0 },
    statusWrites: 0,
    statusWritesDeferred: 0,
  };
  private readonly log: Logger;
  private readonly random: () => number;
  /** app key → pod name → created pod not yet in the cache. */
  private readonly created = new Map<ObjectKey, Map<string, Expected<Pod>>>();
  /** app key → pod name → deleted pod the cache still shows as live. */
  private readonly deleted = new Map<ObjectKey, Map<string, Expected<string>>>();
  private readonly createdCms = new Map<ObjectKey, Map<string, Expected<ConfigMap>>>();
  private readonly lastStatusWrite = new Map<ObjectKey, number>();
  private readonly lastBacklogKick = new Map<ObjectKey, number>();
  /** app key → pod (or source ConfigMap) creates the API server refused for good: not retried at once. */
  private readonly refusedCreates = new RefusalHold();
  /** Pods are judged idle only from here on: a new leader has not heard their last calls. */
  private readonly startedAt: number;

  constructor(private readonly d: ApplicationControllerDeps) {
    this.startedAt = d.clock.now();
    this.log = (d.log ?? silentLogger).child({ component: "application-controller" });
    this.random = d.random ?? Math.random;
    d.applications.onEvent((type, app) => {
      const key = `${app.metadata.namespace ?? ""}/${app.metadata.name ?? ""}`;
      if (type === "DELETED") this.forget(key);
      d.queue.add(key);
    });
    d.pods.onEvent((type, pod) => this.onOwned(this.created, type, pod));
    d.configMaps.onEvent((type, cm) => this.onOwned(this.createdCms, type, cm));
  }

  /**
   * The dispatcher's backlog or pods of `app` changed (queued, running, register, idle). The
   * first change reconciles on the event loop's next timers phase (scale-up latency), not in the
   * microtasks of the change itself: those are a ready call's way to its Running write, which
   * goes out first and is in flight while the Application is decided. A burst (a 2,000-item
   * map) is coalesced to one reconcile per `backlogCoalesceMs`.
   */
  onBacklogChanged(namespace: string, app: string): void {
    const key = `${namespace}/${app}`;
    const now = this.d.clock.now();
    const last = this.lastBacklogKick.get(key);
    const interval = this.d.settings.backlogCoalesceMs;
    if (last === undefined || now - last >= interval) {
      this.lastBacklogKick.set(key, now);
      this.d.queue.addAfter(key, BACKLOG_KICK_MS);
    } else {
      this.d.queue.addAfter(key, last + interval - now);
    }
  }

  /** A pod registered or changed activity; its Application is found from the pod cache. */
  onPodActivityChanged(namespace: string, pod: string): void {
    const app = this.d.pods.get(`${namespace}/${pod}`)?.metadata.labels?.[LABEL.application];
    if (app) this.onBacklogChanged(namespace, app);
  }

  readonly reconcile = async (key: ObjectKey): Promise<ReconcileResult | void> => {
    this.stats.reconciles++;
    const app = this.d.applications.get(key);
    if (!app) {
      this.forget(key);
      return;
    }
    const { namespace } = splitKey(key);
    const now = this.d.clock.now();
    const dispatcher = this.d.dispatcher;
    const appName = app.metadata.name ?? "";
    const view = {
      pods: this.podsOf(key, now),
      configMaps: this.configMapsOf(key, now),
      backlog: (fn: string) => dispatcher.queuedAndRunning(namespace, appName, fn),
      backlogFunctions: dispatcher.functionsWithBacklog(namespace, appName),
      activity: (pod: string) => dispatcher.podActivity(namespace, pod),
      observingSince: this.startedAt,
    };
    const actions = decideApplication(app, view, now, this.d.settings);
    return this.apply(key, app, actions, now);
  };

  private async apply(key: ObjectKey, app: ApplicationObject, actions: Action[], now: number) {
    const { namespace } = splitKey(key);
    let requeueAfterMs: number | undefined;
    const requeue = (ms: number) => (requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, ms));

    // ConfigMaps before pods, so that a new pod's source volume exists when the kubelet mounts it.
    for (const a of actions) {
      if (a.kind === "createConfigMap") await this.createConfigMap(key, app, a.configMap, now);
      else if (a.kind === "deleteConfigMap") await this.d.writer.delete({ ...CM_REF, namespace, name: a.name });
    }
    await Promise.all(this.startPodWrites(key, namespace, app, actions, now));
    const held = this.refusedCreates.heldFor(key, versionOf(app), now);
    if (held !== undefined) requeue(held);

    for (const a of actions) {
      if (a.kind === "event") this.d.events.record(app, a.type, a.reason, a.message);
      else if (a.kind === "requeueAfter") requeue(a.ms);
      else if (a.kind === "writeStatus") {
        const wait = this.statusWriteDelay(key, a, now);
        if (wait > 0) {
          this.stats.statusWritesDeferred++;
          requeue(wait); // counters move often: write them at most once per interval
        } else await this.patchStatus(key, namespace, app, a.patch, now);
      }
    }
    return requeueAfterMs !== undefined ? { requeueAfterMs } : undefined;
  }

  /** Pod writes are independent of each other, so they run concurrently. */
  private startPodWrites(
    key: ObjectKey,
    namespace: string,
    app: ApplicationObject,
    actions: Action[],
    now: number,
  ): Promise<unknown>[] {
    const writes: Promise<unknown>[] = [];
    for (const a of actions) {
      if (a.kind === "deletePod") writes.push(this.deletePod(key, namespace, a.name, a.reason, now));
      else if (a.kind === "createPods") {
        if (this.refusedCreates.heldFor(key, versionOf(app), now) !== undefined) continue;
        for (let i = 0; i < a.count; i++) writes.push(this.createPod(key, app, a, now));
      } else if (a.kind === "ensurePodSecret") writes.push(this.ensureSecret(namespace, a.pod));
    }
    return writes;
  }

  /** Milliseconds a status write must wait; only counters-only writes are rate-limited. */
  private statusWriteDelay(key: ObjectKey, a: Extract<Action, { kind: "writeStatus" }>, now: number): number {
    const last = this.lastStatusWrite.get(key);
    return a.countersOnly && last !== undefined ? last + this.d.settings.countersWriteIntervalMs - now : 0;
  }

  private async patchStatus(
    key: ObjectKey,
    namespace: string,
    app: ApplicationObject,
    patch: Extract<Action, { kind: "writeStatus" }>["patch"],
    now: number,
  ): Promise<void> {
    try {
      await this.d.writer.patchStatus(
        {
          apiVersion: API_VERSION,
          kind: "Application",
          namespace,
          name: app.metadata.name ?? "",
          ...(app.metadata.resourceVersion ? { resourceVersion: app.metadata.resourceVersion } : {}),
        },
        patch,
      );
      this.lastStatusWrite.set(key, now);
      this.stats.statusWrites++;
    } catch (e) {
      // Refused for good: written again at the next change, not retried as is.
      const refused = isPermanent(e, "update") && refusalMessage(e, "update", `the status of Application ${key}`);
      if (refused) return this.d.events.record(app, "Warning", "StatusWriteRefused", refused);
      // The cache is behind the server; the watch event of the newer version requeues the key.
      if (!isConflict(e)) throw e;
      this.log.debug("status write lost a race; waiting for the newer version", { key });
    }
  }

  private async createPod(
    key: ObjectKey,
    app: ApplicationObject,
    a: Extract<Action, { kind: "createPods" }>,
    now: number,
  ): Promise<void> {
    // Names are chosen here (the token Secret is referenced by name); a clash just tries another.
    for (let attempt = 0; ; attempt++) {
      const pod = buildFunctionPod(a.app, a.settings, this.d.settings, randomPodSuffix(this.random));
      let created: Pod;
      try {
        created = await this.d.writer.create(pod);
      } catch (e) {
        if (isAlreadyExists(e) && attempt < 3) continue;
        // Rejected pods (quota, admission, an invalid quantity) are for a human to see.
        const permanent = isPermanent(e, "create");
        const why = permanent
          ? refusalMessage(e, "create", `Pod ${pod.metadata.namespace}/${pod.metadata.name}`)
          : (e as Error).message;
        this.d.events.record(app, "Warning", "PodCreateFailed", `function ${a.function}: ${why}`);
        if (!permanent) throw e;
        // Refused for good: held (with backoff) until the Application changes, not hot-looped.
        this.refusedCreates.refused(key, versionOf(app), now);
        return;
      }
      this.refusedCreates.release(key);
      const name = created.metadata.name ?? pod.metadata.name ?? "";
      if (!this.d.pods.get(`${created.metadata.namespace}/${name}`)) {
        this.expectations(this.created, key).set(name, { obj: created, at: now });
      }
      this.stats.podsCreated++;
      await this.createSecret(created);
      this.log.info("pod created", { key, pod: name, function: a.function });
      return;
    }
  }

  private async createSecret(pod: Pod): Promise<void> {
    const token = this.d.issueToken(pod);
    if (token === undefined) {
      this.log.warn("no runtime token for a pod the operator did not create", {
        pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
      });
      return;
    }
    const secret = buildPodSecret(pod, token);
    try {
      await this.d.writer.create(secret);
    } catch (e) {
      if (isAlreadyExists(e)) return;
      if (!isPermanent(e, "create")) throw e;
      // The pod cannot start without it; the next reconcile that finds it missing tries again.
      const what = `Secret ${secret.metadata.namespace}/${secret.metadata.name}`;
      this.d.events.record(pod, "Warning", "PodSecretRefused", refusalMessage(e, "create", what));
    }
  }

  private async ensureSecret(namespace: string, podName: string): Promise<void> {
    const pod = this.d.pods.get(`${namespace}/${podName}`);
    if (pod?.metadata.uid) await this.createSecret(pod);
  }

  private async deletePod(
    key: ObjectKey,
    namespace: string,
    name: string,
    reason: "idle" | "failed" | "outdated",
    now: number,
  ) {
    await this.d.writer.delete({ ...POD_REF, namespace, name });
    // Revoke now (the token is refused once the pod is gone anyway; GC would delete it later).
    await this.d.writer
      .delete({ apiVersion: "v1", kind: "Secret", namespace, name: podSecretName(name) })
      .catch((e) => {
        if (!isNotFound(e)) throw e;
      });
    this.stats.podsDeleted[reason]++;
    this.expectations(this.deleted, key).set(name, { obj: name, at: now });
    this.log.info("pod deleted", { key, pod: name, reason });
  }

  private async createConfigMap(key: ObjectKey, app: ApplicationObject, cm: ConfigMap, now: number) {
    try {
      const created = await this.d.writer.create(cm);
      this.expectations(this.createdCms, key).set(created.metadata.name ?? "", { obj: created, at: now });
    } catch (e) {
      if (isAlreadyExists(e)) return;
      if (!isPermanent(e, "create")) throw e;
      const what = `ConfigMap ${cm.metadata.namespace ?? ""}/${cm.metadata.name ?? ""}`;
      this.d.events.record(app, "Warning", "SourceConfigMapRefused", refusalMessage(e, "create", what));
      // Pods could not mount their source: hold their creates too.
      this.refusedCreates.refused(key, versionOf(app), now);
    }
  }

  /** Cached pods of the app, plus created ones not seen yet, with deleted ones marked terminating. */
  private podsOf(key: ObjectKey, now: number): Pod[] {
    const cached = this.d.pods.byIndex(APPLICATION_INDEX, key);
    const created = this.fresh(this.created, key, now);
    const deleted = this.fresh(this.deleted, key, now);
    const names = new Set(cached.map((p) => p.metadata.name));
    const pods = cached.map((p) =>
      deleted.has(p.metadata.name ?? "") && !p.metadata.deletionTimestamp
        ? { ...p, metadata: { ...p.metadata, deletionTimestamp: new Date(now).toISOString() } }
        : p,
    );
    for (const [name, e] of created) if (!names.has(name)) pods.push(e.obj);
    return pods;
  }

  private configMapsOf(key: ObjectKey, now: number): ConfigMap[] {
    const cached = this.d.configMaps.byIndex(APPLICATION_INDEX, key);
    const names = new Set(cached.map((c) => c.metadata.name));
    for (const [name, e] of this.fresh(this.createdCms, key, now)) if (!names.has(name)) cached.push(e.obj);
    return cached;
  }

  /** Clears the expectation an informer event fulfils and requeues the owning Application. */
  private onOwned<T extends KubeObject>(
    created: Map<ObjectKey, Map<string, Expected<T>>>,
    type: string,
    obj: KubeObject,
  ): void {
    const app = obj.metadata.labels?.[LABEL.application];
    if (!app) return;
    const key = `${obj.metadata.namespace ?? ""}/${app}`;
    const name = obj.metadata.name ?? "";
    created.get(key)?.delete(name);
    if (type === "DELETED" || obj.metadata.deletionTimestamp) this.deleted.get(key)?.delete(name);
    this.d.queue.add(key);
  }

  private expectations<T>(m: Map<ObjectKey, Map<string, Expected<T>>>, key: ObjectKey): Map<string, Expected<T>> {
    let e = m.get(key);
    if (!e) m.set(key, (e = new Map()));
    return e;
  }

  /** Expectations younger than the TTL (an event lost for good must not block scaling forever). */
  private fresh<T>(m: Map<ObjectKey, Map<string, Expected<T>>>, key: ObjectKey, now: number) {
    const e = m.get(key);
    if (!e) return new Map<string, Expected<T>>();
    for (const [name, x] of e) if (now - x.at > EXPECTATION_TTL_MS) e.delete(name);
    return e;
  }

  private forget(key: ObjectKey): void {
    this.created.delete(key);
    this.deleted.delete(key);
    this.createdCms.delete(key);
    this.lastStatusWrite.delete(key);
    this.lastBacklogKick.delete(key);
  }
}

/** What releases a refusal hold: a user's change to the Application's spec. */
const versionOf = (app: ApplicationObject): string => String(app.metadata.generation ?? "");
