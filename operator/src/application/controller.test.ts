// The controller against in-memory implementations of the kube edge and the dispatcher view.
import { beforeEach, describe, expect, it } from "vitest";
import { KubeApiError } from "../kube/errors.js";
import type { Informer, KubeObject, ObjectKey, ObjectWriter, WatchEventType } from "../kube/types.js";
import { ApplicationController, applicationIndexers } from "./controller.js";
import { defaultApplicationSettings } from "./settings.js";
import type { ApplicationObject, Backlog, ConfigMap, DispatcherView, Pod, PodActivity, Secret } from "./types.js";

class MemInformer<T extends KubeObject> implements Informer<T> {
  readonly objs = new Map<ObjectKey, T>();
  private readonly handlers: ((t: WatchEventType, o: T, old: T | undefined) => void)[] = [];
  constructor(private readonly indexers: Record<string, (o: KubeObject) => string[]> = {}) {}
  get = (k: ObjectKey) => this.objs.get(k);
  list = (ns?: string) => [...this.objs.values()].filter((o) => ns === undefined || o.metadata.namespace === ns);
  byIndex(index: string, value: string): T[] {
    const f = this.indexers[index];
    if (!f) throw new Error(`index ${index} not declared`);
    return [...this.objs.values()].filter((o) => f(o).includes(value));
  }
  synced = () => true;
  onEvent(h: (t: WatchEventType, o: T, old: T | undefined) => void) {
    this.handlers.push(h);
  }
  start = async () => {};
  stop = () => {};
  put(o: T) {
    const k = `${o.metadata.namespace}/${o.metadata.name}`;
    const old = this.objs.get(k);
    this.objs.set(k, structuredClone(o));
    for (const h of this.handlers) h(old ? "MODIFIED" : "ADDED", o, old);
  }
  remove(k: ObjectKey) {
    const old = this.objs.get(k);
    if (!old) return;
    this.objs.delete(k);
    for (const h of this.handlers) h("DELETED", old, old);
  }
}

/** A tiny API server: objects by kind/namespace/name, resourceVersions, 409s. */
class MemServer implements ObjectWriter {
  readonly objs = new Map<string, KubeObject & Record<string, unknown>>();
  readonly log: string[] = [];
  private rv = 1;
  private uid = 1;
  failCreate?: (o: KubeObject) => Error | undefined;
  now = () => 0;
  private k = (r: { kind?: string; namespace?: string; name?: string }) => `${r.kind}/${r.namespace}/${r.name}`;
  async create<T extends KubeObject>(obj: T): Promise<T> {
    const err = this.failCreate?.(obj);
    if (err) throw err;
    const k = this.k({ ...obj, ...obj.metadata });
    if (this.objs.has(k)) throw new KubeApiError(409, "AlreadyExists", `${k} already exists`, "POST", k);
    const o = structuredClone(obj) as T & Record<string, unknown>;
    o.metadata.uid = `uid-${this.uid++}`;
    o.metadata.resourceVersion = String(this.rv++);
    o.metadata.creationTimestamp = new Date(this.now()).toISOString();
    this.objs.set(k, o);
    this.log.push(`create ${k}`);
    return structuredClone(o);
  }
  async replaceStatus<T extends KubeObject>(): Promise<T> {
    throw new Error("MemServer.replaceStatus: not used by the Application controller");
  }
  async patchStatus<T extends KubeObject>(
    ref: { kind: string; namespace: string; name: string; resourceVersion?: string },
    status: Record<string, unknown>,
  ): Promise<T> {
    const k = this.k(ref);
    const o = this.objs.get(k);
    if (!o) throw new KubeApiError(404, "NotFound", k, "PATCH", k);
    if (ref.resourceVersion && ref.resourceVersion !== o.metadata.resourceVersion) {
      throw new KubeApiError(409, "Conflict", "the object has been modified", "PATCH", k);
    }
    const merged = { ...((o.status as object) ?? {}), ...status } as Record<string, unknown>;
    for (const [key, v] of Object.entries(merged)) if (v === null) delete merged[key];
    o.status = merged;
    o.metadata.resourceVersion = String(this.rv++);
    this.log.push(`status ${k}`);
    return structuredClone(o) as unknown as T;
  }
  async patchMeta<T extends KubeObject>(): Promise<T> {
    throw new Error("not used");
  }
  async delete(ref: { kind: string; namespace: string; name: string }): Promise<void> {
    this.objs.delete(this.k(ref));
    this.log.push(`delete ${this.k(ref)}`);
  }
  ofKind<T>(kind: string): T[] {
    return [...this.objs.entries()].filter(([k]) => k.startsWith(`${kind}/`)).map(([, o]) => o as T);
  }
}

class MemDispatcher implements DispatcherView {
  backlog = new Map<string, Backlog>();
  activity = new Map<string, PodActivity>();
  queuedAndRunning = (_ns: string, _app: string, fn: string) => this.backlog.get(fn) ?? { queued: 0, running: 0 };
  podActivity = (_ns: string, pod: string) => this.activity.get(pod);
  functionsWithBacklog = () => [...this.backlog.keys()];
}

const NS = "ns1";
const KEY = `${NS}/shop`;
const T0 = Date.parse("2026-01-01T00:00:00Z");

function setup(settingsOver: Parameters<typeof defaultApplicationSettings>[0] = {}) {
  let now = T0;
  const clock = { now: () => now };
  const server = new MemServer();
  server.now = clock.now;
  const applications = new MemInformer<ApplicationObject>();
  const pods = new MemInformer<Pod>(applicationIndexers);
  const configMaps = new MemInformer<ConfigMap>(applicationIndexers);
  const dispatcher = new MemDispatcher();
  const events: { reason: string; type: string; message: string }[] = [];
  const added: string[] = [];
  const delayed: [string, number][] = [];
  const settings = defaultApplicationSettings({
    idleTimeoutSeconds: 300,
    countersWriteIntervalMs: 1000,
    ...settingsOver,
  });
  const controller = new ApplicationController({
    applications,
    pods,
    configMaps,
    writer: server,
    events: { record: (_o, type, reason, message) => events.push({ type, reason, message }) },
    clock,
    dispatcher,
    queue: { add: (k) => added.push(k), addAfter: (k, ms) => delayed.push([k, ms]) },
    issueToken: (pod) => `token-for-${pod.metadata.namespace}/${pod.metadata.name}`,
    settings,
    random: (() => {
      let i = 0;
      return () => ((i++ * 7) % 27) / 27;
    })(),
  });
  /** The informers catch up with the server (the watch delivers). */
  const sync = () => {
    for (const p of server.ofKind<Pod>("Pod")) pods.put(p);
    for (const k of [...pods.objs.keys()]) if (!server.objs.has(`Pod/${k}`)) pods.remove(k);
    for (const c of server.ofKind<ConfigMap>("ConfigMap")) configMaps.put(c);
    syncApp();
  };
  const syncApp = () => {
    const app = server.objs.get(`Application/${KEY}`);
    if (app) applications.put(app as unknown as ApplicationObject);
    else applications.remove(KEY);
  };
  const deploy = async (spec: Partial<ApplicationObject["spec"]> = {}) => {
    await server.create<ApplicationObject>({
      apiVersion: "trellis.dev/v1alpha1",
      kind: "Application",
      metadata: { name: "shop", namespace: NS, generation: 1 },
      spec: { entrypoint: "main", source: { inline: "x = 1\n" }, ...spec },
    });
    sync();
  };
  const setPodStatus = (name: string, status: Pod["status"]) => {
    const p = server.objs.get(`Pod/${NS}/${name}`) as Pod;
    p.status = status;
    sync();
  };
  const app = () => server.objs.get(`Application/${KEY}`) as unknown as ApplicationObject;
  const cond = (type: string) => app().status?.conditions?.find((c) => c.type === type);
  return {
    controller,
    server,
    dispatcher,
    events,
    added,
    delayed,
    sync,
    syncApp,
    deploy,
    setPodStatus,
    app,
    cond,
    advance: (ms: number) => (now += ms),
    podNames: () => server.ofKind<Pod>("Pod").map((p) => p.metadata.name!),
  };
}

const readyStatus: Pod["status"] = { phase: "Running", conditions: [{ type: "Ready", status: "True" }] };
const TABLE = [
  { name: "main", async: false, application: true },
  { name: "embed", async: false, maxConcurrency: 2 },
];

describe("ApplicationController", () => {
  let t: ReturnType<typeof setup>;
  beforeEach(() => {
    t = setup();
  });

  it("deploys: source ConfigMap, a pod with its token Secret, status, ScaledUp", async () => {
    await t.deploy();
    expect(t.added).toContain(KEY);
    await t.controller.reconcile(KEY);
    const [cm] = t.server.ofKind<ConfigMap>("ConfigMap");
    expect(cm?.metadata.name).toMatch(/^shop-source-/);
    const [pod] = t.server.ofKind<Pod>("Pod");
    expect(pod?.metadata.name).toMatch(/^shop-main-[a-z0-9]{5}$/);
    const [secret] = t.server.ofKind<Secret>("Secret");
    expect(secret?.metadata.name).toBe(`${pod!.metadata.name}.trellis-pod-token`);
    expect(secret?.stringData).toEqual({ token: `token-for-${NS}/${pod!.metadata.name}` });
    expect(secret?.metadata.ownerReferences?.[0]).toMatchObject({ kind: "Pod", uid: pod!.metadata.uid });
    // ConfigMap before the pod that mounts it.
    expect(t.server.log.findIndex((l) => l.startsWith("create ConfigMap"))).toBeLessThan(
      t.server.log.findIndex((l) => l.startsWith("create Pod")),
    );
    expect(t.cond("CodeLoaded")).toMatchObject({ status: "Unknown" });
    expect(t.events.map((e) => e.reason)).toEqual(["ScaledUp"]);
  });

  it("does not create twice while the informer has not seen its pod yet", async () => {
    await t.deploy();
    await t.controller.reconcile(KEY);
    t.syncApp(); // the app's new status arrives, the pod not yet
    await t.controller.reconcile(KEY);
    expect(t.server.ofKind<Pod>("Pod")).toHaveLength(1);
    expect(t.server.ofKind<ConfigMap>("ConfigMap")).toHaveLength(1);
  });

  it("publishes the table a pod registered with and becomes Ready", async () => {
    await t.deploy();
    await t.controller.reconcile(KEY);
    const [name] = t.podNames();
    t.setPodStatus(name!, readyStatus);
    t.dispatcher.activity.set(name!, { registered: true, running: 0, functions: TABLE });
    t.controller.onPodActivityChanged(NS, name!);
    expect(t.added.at(-1)).toBe(KEY);
    await t.controller.reconcile(KEY);
    expect(t.cond("CodeLoaded")).toMatchObject({ status: "True", reason: "Loaded" });
    expect(t.cond("Ready")).toMatchObject({ status: "True" });
    expect(t.app().status?.discovered?.map((f) => f.name)).toEqual(["embed", "main"]);
    expect(t.app().status?.readyContainers).toBe(1);
  });

  it("scales up on backlog and reaps idle pods through the writer", async () => {
    await t.deploy();
    await t.controller.reconcile(KEY);
    t.sync();
    const [first] = t.podNames();
    t.setPodStatus(first!, readyStatus);
    t.dispatcher.activity.set(first!, { registered: true, running: 0, functions: TABLE });
    t.dispatcher.backlog.set("embed", { queued: 5, running: 0 });
    t.controller.onBacklogChanged(NS, "shop");
    await t.controller.reconcile(KEY);
    expect(t.podNames().filter((n) => n.startsWith("shop-embed-"))).toHaveLength(3); // ceil(5 / 2)
    expect(t.events.filter((e) => e.reason === "ScaledUp").at(-1)?.message).toContain("function embed");
    t.sync();

    // The work is done; ten minutes later every pod is idle past the timeout: scale to zero.
    t.dispatcher.backlog.clear();
    t.advance(600_000);
    for (const n of t.podNames()) {
      t.setPodStatus(n, readyStatus);
      t.dispatcher.activity.set(n, { registered: true, running: 0, functions: TABLE, lastBusyAt: T0 });
    }
    t.sync();
    await t.controller.reconcile(KEY);
    expect(t.podNames()).toEqual([]);
    expect(t.server.log.filter((l) => l.startsWith("delete Pod"))).toHaveLength(4);
    // Each pod's token Secret is deleted with it (revoked at once, not left to garbage collection).
    expect(
      t.server.log.filter((l) => l.startsWith("delete Secret")).map((l) => l.replace(".trellis-pod-token", "")),
    ).toEqual(t.server.log.filter((l) => l.startsWith("delete Pod")).map((l) => l.replace("Pod", "Secret")));
    expect(t.events.filter((e) => e.reason === "ScaledDown")).toHaveLength(2);
    // Before the informer sees the deletions, nothing is deleted twice or replaced.
    const writes = t.server.log.length;
    await t.controller.reconcile(KEY);
    expect(t.server.log.slice(writes).filter((l) => !l.startsWith("status"))).toEqual([]);
  });

  it("asks to be requeued when the next idle pod expires", async () => {
    await t.deploy();
    await t.controller.reconcile(KEY);
    t.sync();
    const [name] = t.podNames();
    t.setPodStatus(name!, readyStatus);
    t.dispatcher.activity.set(name!, { registered: true, running: 0, functions: TABLE, lastBusyAt: T0 + 60_000 });
    t.advance(100_000);
    const r = await t.controller.reconcile(KEY);
    expect(r).toEqual({ requeueAfterMs: 260_000 });
  });

  it("throttles status writes that only move counters", async () => {
    await t.deploy();
    await t.controller.reconcile(KEY);
    t.sync();
    const [name] = t.podNames();
    t.setPodStatus(name!, readyStatus);
    t.dispatcher.activity.set(name!, { registered: true, running: 1, functions: TABLE });
    t.dispatcher.backlog.set("main", { queued: 0, running: 1 });
    await t.controller.reconcile(KEY);
    t.sync();
    const statusWrites = () => t.server.log.filter((l) => l.startsWith("status")).length;
    const before = statusWrites();
    t.advance(100);
    t.dispatcher.backlog.set("main", { queued: 1, running: 1 }); // one call waits; a pod is on its way
    const r = await t.controller.reconcile(KEY);
    expect(statusWrites()).toBe(before);
    expect(r?.requeueAfterMs).toBe(900);
    t.sync();
    t.advance(900);
    await t.controller.reconcile(KEY);
    expect(statusWrites()).toBe(before + 1);
    expect(t.app().status?.functions?.find((f) => f.name === "main")).toMatchObject({ queued: 1, running: 1 });
  });

  it("leaves a status write that lost a race to the next watch event", async () => {
    await t.deploy();
    // Someone else writes first: the cached resourceVersion is stale.
    await t.server.patchStatus({ kind: "Application", namespace: NS, name: "shop" }, { observedGeneration: 0 });
    await expect(t.controller.reconcile(KEY)).resolves.toBeUndefined();
  });

  it("records CodeLoadFailed and PodCrashLooping for a worker that cannot import the code", async () => {
    await t.deploy();
    await t.controller.reconcile(KEY);
    t.sync();
    const [name] = t.podNames();
    t.setPodStatus(name!, {
      phase: "Running",
      containerStatuses: [
        {
          name: "worker",
          image: "i",
          imageID: "",
          ready: false,
          restartCount: 2,
          state: { waiting: { reason: "CrashLoopBackOff", message: "back-off" } },
          lastState: { terminated: { exitCode: 3, message: "ModuleNotFoundError: No module named 'numpy'" } },
        },
      ],
    });
    await t.controller.reconcile(KEY);
    expect(t.cond("CodeLoaded")).toMatchObject({ status: "False", reason: "CodeLoadFailed" });
    expect(t.cond("CodeLoaded")?.message).toContain("No module named 'numpy'");
    const warnings = t.events.filter((e) => e.type === "Warning").map((e) => e.reason);
    expect(warnings).toEqual(expect.arrayContaining(["CodeLoadFailed", "PodCrashLooping"]));
  });

  it("reports a pod the API server rejects and retries through the queue", async () => {
    await t.deploy();
    t.server.failCreate = (o) =>
      o.kind === "Pod" ? new KubeApiError(403, "Forbidden", "exceeded quota: pods", "POST", "pods") : undefined;
    await expect(t.controller.reconcile(KEY)).rejects.toThrow("exceeded quota");
    expect(t.events.find((e) => e.reason === "PodCreateFailed")?.message).toContain("exceeded quota");
  });

  it("holds pod creates the API server refuses for good (no hot loop) until the Application changes", async () => {
    await t.deploy();
    const rule = 'admission webhook "policy" denied the request: image not allowed';
    let refusals = 0;
    t.server.failCreate = (o) =>
      o.kind === "Pod" && ++refusals
        ? new KubeApiError(403, "Forbidden", rule, "POST", "pods", { message: rule })
        : undefined;
    const first = await t.controller.reconcile(KEY);
    expect(refusals).toBe(1);
    expect(first).toMatchObject({ requeueAfterMs: 10_000 });
    expect(t.events.find((e) => e.reason === "PodCreateFailed")?.message).toMatch(
      /refused to create Pod ns1\/shop-main-\w+ \(403 Forbidden\): admission webhook "policy" denied the request/,
    );
    // Reconciles triggered by backlog changes do not repeat the refused create while it is held.
    t.advance(5_000);
    await t.controller.reconcile(KEY);
    expect(refusals).toBe(1);
    t.advance(5_000);
    expect(await t.controller.reconcile(KEY)).toMatchObject({ requeueAfterMs: 20_000 });
    expect(refusals).toBe(2);
    // A change of the Application (a new generation) tries at once.
    const a = t.server.objs.get(`Application/${KEY}`)!;
    a.metadata.generation = 2;
    t.syncApp();
    t.server.failCreate = undefined;
    await t.controller.reconcile(KEY);
    expect(t.podNames()).toHaveLength(1);
  });

  it("records a status write refused for good instead of throwing", async () => {
    await t.deploy();
    t.server.patchStatus = async () => {
      throw new KubeApiError(422, "Invalid", "status.conditions[0].message: Too long", "PATCH", "applications", {
        message: "status.conditions[0].message: Too long",
      });
    };
    await t.controller.reconcile(KEY);
    expect(t.events.find((e) => e.reason === "StatusWriteRefused")?.message).toContain(
      "refused to update the status of Application ns1/shop (422 Invalid): status.conditions[0].message: Too long",
    );
  });

  it("reacts to the first backlog change on the next timers phase and coalesces a burst", async () => {
    t.controller.onBacklogChanged(NS, "shop");
    // Not in the change's own microtasks: the dispatch that changed the backlog writes first.
    expect(t.added).toEqual([]);
    expect(t.delayed).toEqual([[KEY, 1]]);
    for (let i = 0; i < 50; i++) t.controller.onBacklogChanged(NS, "shop");
    expect(new Set(t.delayed.map(([k, ms]) => `${k} ${ms}`))).toEqual(new Set([`${KEY} 1`, `${KEY} 100`]));
    t.advance(100);
    t.delayed.length = 0;
    t.controller.onBacklogChanged(NS, "shop");
    expect(t.delayed).toEqual([[KEY, 1]]);
  });

  it("counts what it did for the metrics", async () => {
    await t.deploy();
    await t.controller.reconcile(KEY);
    expect(t.controller.stats).toMatchObject({ reconciles: 1, podsCreated: 1, statusWrites: 1 });
  });

  it("requeues the owning Application on pod events and forgets a deleted one", async () => {
    await t.deploy();
    await t.controller.reconcile(KEY);
    t.added.length = 0;
    t.sync();
    expect(t.added).toContain(KEY);
    t.server.objs.delete(`Application/${KEY}`);
    t.sync();
    await expect(t.controller.reconcile(KEY)).resolves.toBeUndefined();
  });
});
