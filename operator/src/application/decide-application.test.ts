import type { V1ContainerStatus } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { decideApplication, type Action, type ApplicationView } from "./decide-application.js";
import { buildFunctionPod, buildSourceConfigMap } from "./pod-builder.js";
import { defaultApplicationSettings, effectiveFunctionSettings } from "./settings.js";
import type { ApplicationObject, Backlog, ConfigMap, DiscoveredFunction, Pod, PodActivity } from "./types.js";

const NOW = Date.parse("2026-01-01T01:00:00Z");
const settings = defaultApplicationSettings({ idleTimeoutSeconds: 300 });
const TABLE: DiscoveredFunction[] = [
  { name: "main", async: false, application: true },
  { name: "embed", async: true, maxConcurrency: 2 },
];

function mkApp(spec: Partial<ApplicationObject["spec"]> = {}, status?: ApplicationObject["status"]): ApplicationObject {
  return {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "Application",
    metadata: { name: "shop", namespace: "ns1", uid: "app-uid", generation: 3 },
    spec: { entrypoint: "main", source: { inline: "x = 1\n" }, ...spec },
    ...(status ? { status } : {}),
  };
}

let podSeq = 0;
/** A pod of `fn` built from the app's current spec, running and Ready unless told otherwise. */
function mkPod(
  app: ApplicationObject,
  fn: string,
  o: { createdAgoMs?: number; ready?: boolean; worker?: Partial<V1ContainerStatus>; phase?: string } = {},
): Pod {
  const p = buildFunctionPod(
    app,
    effectiveFunctionSettings(app, fn, undefined, settings),
    settings,
    `p${String(podSeq++).padStart(4, "0")}`,
  );
  p.metadata.uid = `uid-${p.metadata.name}`;
  p.metadata.creationTimestamp = new Date(NOW - (o.createdAgoMs ?? 60_000)).toISOString();
  p.status = {
    phase: o.phase ?? "Running",
    conditions: [{ type: "Ready", status: o.ready === false ? "False" : "True" }],
    containerStatuses: [
      {
        name: "worker",
        image: "i",
        imageID: "",
        ready: o.ready !== false,
        restartCount: 0,
        state: { running: {} },
        ...o.worker,
      },
    ],
  };
  return p;
}

function mkView(
  pods: Pod[],
  o: {
    configMaps?: ConfigMap[];
    backlog?: Record<string, Backlog>;
    activity?: Record<string, PodActivity>;
  } = {},
): ApplicationView {
  return {
    pods,
    configMaps: o.configMaps ?? [],
    backlog: (fn) => o.backlog?.[fn] ?? { queued: 0, running: 0 },
    backlogFunctions: Object.keys(o.backlog ?? {}),
    activity: (pod) => o.activity?.[pod],
  };
}

const registered = (over: Partial<PodActivity> = {}): PodActivity => ({
  registered: true,
  running: 0,
  functions: TABLE,
  ...over,
});

const ofKind = <K extends Action["kind"]>(actions: Action[], kind: K) =>
  actions.filter((a): a is Extract<Action, { kind: K }> => a.kind === kind);
const statusOf = (actions: Action[]) => ofKind(actions, "writeStatus")[0]?.status;
const cond = (actions: Action[], type: string) => statusOf(actions)?.conditions?.find((c) => c.type === type);
const events = (actions: Action[]) => ofKind(actions, "event").map((e) => e.reason);

describe("decideApplication", () => {
  it("deploys a new application: source ConfigMap, one pod to load the code, status Loading", () => {
    const app = mkApp();
    const a = decideApplication(app, mkView([]), NOW, settings);
    expect(ofKind(a, "createConfigMap")[0]?.configMap.metadata.name).toBe(buildSourceConfigMap(app)!.metadata.name);
    expect(ofKind(a, "createPods")).toMatchObject([{ function: "main", count: 1 }]);
    expect(events(a)).toContain("ScaledUp");
    const s = statusOf(a)!;
    expect(s.observedGeneration).toBe(3);
    expect(cond(a, "CodeLoaded")).toMatchObject({ status: "Unknown", reason: "Loading" });
    expect(cond(a, "Ready")).toMatchObject({ status: "False", reason: "Loading" });
    expect(cond(a, "SpecMatchesCode")?.status).toBe("Unknown");
    expect(s.functions).toEqual([{ name: "main", ready: 0, busy: 0, queued: 0, running: 0 }]);
  });

  it("builds pods from the create action that carry the current template", () => {
    const app = mkApp();
    const create = ofKind(decideApplication(app, mkView([]), NOW, settings), "createPods")[0]!;
    const pod = buildFunctionPod(create.app, create.settings, settings, "aaaaa");
    pod.metadata.creationTimestamp = new Date(NOW).toISOString();
    const again = decideApplication(app, mkView([pod]), NOW, settings);
    expect(ofKind(again, "createPods")).toEqual([]);
    expect(ofKind(again, "deletePod")).toEqual([]);
  });

  it("publishes the function table a current pod registered with, and becomes Ready", () => {
    const app = mkApp();
    const pod = mkPod(app, "main");
    const cm = buildSourceConfigMap(app)!;
    const a = decideApplication(
      app,
      mkView([pod], { configMaps: [cm], activity: { [pod.metadata.name!]: registered() } }),
      NOW,
      settings,
    );
    expect(ofKind(a, "createConfigMap")).toEqual([]);
    expect(ofKind(a, "createPods")).toEqual([]);
    const s = statusOf(a)!;
    expect(s.discovered).toEqual([
      { name: "embed", async: true, maxConcurrency: 2 },
      { name: "main", async: false, application: true },
    ]);
    expect(cond(a, "CodeLoaded")).toMatchObject({ status: "True", reason: "Loaded", observedGeneration: 3 });
    expect(cond(a, "SpecMatchesCode")).toMatchObject({ status: "True" });
    expect(cond(a, "SpecMatchesCode")?.message).toContain("decorator settings only: embed");
    expect(cond(a, "ContainersHealthy")?.status).toBe("True");
    expect(cond(a, "Ready")).toMatchObject({ status: "True", reason: "Ready" });
    expect(s.readyContainers).toBe(1);
    expect(s.functions).toEqual([
      { name: "embed", ready: 0, busy: 0, queued: 0, running: 0 },
      { name: "main", ready: 1, busy: 0, queued: 0, running: 0 },
    ]);
  });

  it("writes nothing when nothing changed, keeping lastTransitionTime", () => {
    const app = mkApp();
    const pod = mkPod(app, "main");
    const view = mkView([pod], {
      configMaps: [buildSourceConfigMap(app)!],
      activity: { [pod.metadata.name!]: registered() },
    });
    const first = decideApplication(app, view, NOW, settings);
    app.status = statusOf(first);
    const second = decideApplication(app, view, NOW + 5000, settings);
    expect(ofKind(second, "writeStatus")).toEqual([]);
    expect(ofKind(second, "event")).toEqual([]);
  });

  it("marks status writes that only move counters", () => {
    const app = mkApp();
    const pod = mkPod(app, "main");
    const cms = [buildSourceConfigMap(app)!];
    const act = { [pod.metadata.name!]: registered({ running: 1 }) };
    const first = decideApplication(
      app,
      mkView([pod], { configMaps: cms, activity: act, backlog: { main: { queued: 0, running: 1 } } }),
      NOW,
      settings,
    );
    app.status = statusOf(first);
    const second = decideApplication(
      app,
      mkView([pod], { configMaps: cms, activity: act, backlog: { main: { queued: 1, running: 1 } } }),
      NOW,
      settings,
    );
    expect(ofKind(second, "writeStatus")[0]).toMatchObject({ countersOnly: true });
    expect(ofKind(second, "writeStatus")[0]?.status.functions?.find((f) => f.name === "main")?.queued).toBe(1);
    expect(ofKind(second, "createPods")).toMatchObject([{ function: "main", count: 1 }]);
  });

  it("scales a function on its backlog with the decorator's concurrency, up to max", () => {
    const app = mkApp({ functions: [{ name: "embed", maxContainers: 3 }] });
    const pod = mkPod(app, "main");
    const a = decideApplication(
      app,
      mkView([pod], {
        configMaps: [buildSourceConfigMap(app)!],
        activity: { [pod.metadata.name!]: registered() },
        backlog: { embed: { queued: 5, running: 0 } },
      }),
      NOW,
      settings,
    );
    expect(ofKind(a, "createPods")).toMatchObject([{ function: "embed", count: 3 }]);
    const up = ofKind(a, "event").find((e) => e.reason === "ScaledUp");
    expect(up?.message).toContain("concurrency 2");
  });

  it("reaps pods idle past the timeout (scale to zero) and asks to be woken for the next one", () => {
    const app = mkApp();
    const old = mkPod(app, "main", { createdAgoMs: 3_600_000 });
    const young = mkPod(app, "main", { createdAgoMs: 3_600_000 });
    const a = decideApplication(
      app,
      mkView([old, young], {
        configMaps: [buildSourceConfigMap(app)!],
        activity: {
          [old.metadata.name!]: registered({ lastBusyAt: NOW - 400_000 }),
          [young.metadata.name!]: registered({ lastBusyAt: NOW - 100_000 }),
        },
      }),
      NOW,
      settings,
    );
    expect(ofKind(a, "deletePod")).toEqual([
      { kind: "deletePod", name: old.metadata.name, function: "main", reason: "idle" },
    ]);
    expect(events(a)).toContain("ScaledDown");
    expect(ofKind(a, "requeueAfter")).toEqual([{ kind: "requeueAfter", ms: 200_000 }]);
  });

  it("after a failover, pods not yet heard from are idle only from when this operator started", () => {
    const app = mkApp();
    const silent = mkPod(app, "main", { createdAgoMs: 3_600_000 });
    const heard = mkPod(app, "main", { createdAgoMs: 3_600_000 });
    const view = mkView([silent, heard], {
      configMaps: [buildSourceConfigMap(app)!],
      activity: { [heard.metadata.name!]: registered({}) },
    });
    const justStarted = decideApplication(app, { ...view, observingSince: NOW - 10_000 }, NOW, settings);
    expect(ofKind(justStarted, "deletePod")).toEqual([]);
    expect(ofKind(justStarted, "requeueAfter")).toEqual([{ kind: "requeueAfter", ms: 290_000 }]);
    const later = decideApplication(app, { ...view, observingSince: NOW - 300_000 }, NOW, settings);
    expect(
      ofKind(later, "deletePod")
        .map((d) => d.name)
        .sort(),
    ).toEqual([silent.metadata.name, heard.metadata.name].sort());
  });

  it("reports a worker that failed to import the code", () => {
    const app = mkApp();
    const pod = mkPod(app, "main", {
      ready: false,
      worker: {
        restartCount: 3,
        state: { waiting: { reason: "CrashLoopBackOff", message: "back-off" } },
        lastState: {
          terminated: {
            exitCode: 3,
            message: 'Traceback (most recent call last):\nNameError: name "y" is not defined',
          },
        },
      },
    });
    const a = decideApplication(app, mkView([pod], { configMaps: [buildSourceConfigMap(app)!] }), NOW, settings);
    expect(cond(a, "CodeLoaded")).toMatchObject({ status: "False", reason: "CodeLoadFailed" });
    expect(cond(a, "CodeLoaded")?.message).toContain('NameError: name "y" is not defined');
    expect(cond(a, "Ready")).toMatchObject({ status: "False", reason: "CodeLoadFailed" });
    expect(cond(a, "ContainersHealthy")).toMatchObject({ status: "False", reason: "CrashLoopBackOff" });
    expect(events(a)).toEqual(expect.arrayContaining(["CodeLoadFailed", "PodCrashLooping"]));
    expect(ofKind(a, "createPods")).toEqual([]); // the kubelet backs off; no more pods

    // The failure outlives the pod: once it is reaped, the status still says why.
    app.status = statusOf(a);
    const later = decideApplication(
      app,
      mkView([], { configMaps: [buildSourceConfigMap(app)!] }),
      NOW + 1000,
      settings,
    );
    expect(ofKind(later, "createPods")).toEqual([]);
    expect(cond(later, "CodeLoaded") ?? app.status?.conditions?.find((c) => c.type === "CodeLoaded")).toMatchObject({
      status: "False",
      reason: "CodeLoadFailed",
    });
  });

  it.each(["ImagePullBackOff", "ErrImageNeverPull", "CreateContainerConfigError"])(
    "surfaces %s from the container statuses",
    (reason) => {
      const app = mkApp({ image: "example.org/missing:1", source: undefined, module: "app" });
      const pod = mkPod(app, "main", {
        ready: false,
        createdAgoMs: 120_000,
        worker: { state: { waiting: { reason, message: `the ${reason} details` } } },
      });
      const a = decideApplication(app, mkView([pod]), NOW, settings);
      expect(cond(a, "ContainersHealthy")).toMatchObject({ status: "False", reason });
      expect(cond(a, "ContainersHealthy")?.message).toContain(`the ${reason} details`);
      expect(events(a)).toContain(reason);
    },
  );

  it("reports spec names the code does not define, and gives them no pods", () => {
    const app = mkApp({ functions: [{ name: "ghost", minContainers: 1 }] });
    const pod = mkPod(app, "main");
    const a = decideApplication(
      app,
      mkView([pod], { configMaps: [buildSourceConfigMap(app)!], activity: { [pod.metadata.name!]: registered() } }),
      NOW,
      settings,
    );
    expect(cond(a, "SpecMatchesCode")).toMatchObject({ status: "False", reason: "FunctionsMissing" });
    expect(cond(a, "SpecMatchesCode")?.message).toContain("ghost");
    expect(ofKind(a, "createPods")).toEqual([]);
    expect(cond(a, "Ready")?.status).toBe("True");

    const noEntry = mkApp({ entrypoint: "missing" });
    const p2 = mkPod(noEntry, "main");
    const b = decideApplication(
      noEntry,
      mkView([p2], { configMaps: [buildSourceConfigMap(noEntry)!], activity: { [p2.metadata.name!]: registered() } }),
      NOW,
      settings,
    );
    expect(cond(b, "Ready")).toMatchObject({ status: "False", reason: "EntrypointMissing" });
  });

  it("keeps min containers warm and is Ready only once they are", () => {
    const app = mkApp({ functions: [{ name: "embed", minContainers: 2 }] });
    const main = mkPod(app, "main");
    const view = mkView([main], {
      configMaps: [buildSourceConfigMap(app)!],
      activity: { [main.metadata.name!]: registered() },
    });
    const a = decideApplication(app, view, NOW, settings);
    expect(ofKind(a, "createPods")).toMatchObject([{ function: "embed", count: 2 }]);
    expect(cond(a, "Ready")).toMatchObject({ status: "False", reason: "ContainersNotReady" });
    expect(cond(a, "Ready")?.message).toContain("embed");
  });

  it("rolls pods when the code changes, and drops the old source ConfigMap once unmounted", () => {
    const before = mkApp();
    const oldPod = mkPod(before, "main");
    const oldCm = buildSourceConfigMap(before)!;
    const after = mkApp({ source: { inline: "x = 2\n" } });
    after.metadata.generation = 4;
    const a = decideApplication(
      after,
      mkView([oldPod], { configMaps: [oldCm], activity: { [oldPod.metadata.name!]: registered() } }),
      NOW,
      settings,
    );
    expect(ofKind(a, "deletePod")).toMatchObject([{ name: oldPod.metadata.name, reason: "outdated" }]);
    expect(ofKind(a, "createPods")).toMatchObject([{ function: "main", count: 1 }]);
    expect(ofKind(a, "createConfigMap")[0]?.configMap.metadata.name).not.toBe(oldCm.metadata.name);
    expect(ofKind(a, "deleteConfigMap")).toEqual([]); // still mounted by the old pod
    // The old pod's table describes the old code: not published as the new code's.
    expect(cond(a, "CodeLoaded")?.status).toBe("Unknown");

    const b = decideApplication(
      after,
      mkView([mkPod(after, "main")], { configMaps: [oldCm, buildSourceConfigMap(after)!] }),
      NOW,
      settings,
    );
    expect(ofKind(b, "deleteConfigMap")).toEqual([{ kind: "deleteConfigMap", name: oldCm.metadata.name }]);
  });

  it("trusts the last status after an operator restart instead of starting a pod", () => {
    const app = mkApp();
    const pod = mkPod(app, "main");
    const cms = [buildSourceConfigMap(app)!];
    const first = decideApplication(
      app,
      mkView([pod], { configMaps: cms, activity: { [pod.metadata.name!]: registered() } }),
      NOW,
      settings,
    );
    app.status = statusOf(first);
    // Restarted operator, pods scaled to zero meanwhile: no activity known.
    const a = decideApplication(app, mkView([], { configMaps: cms }), NOW + 1000, settings);
    expect(ofKind(a, "createPods")).toEqual([]);
    expect(cond(a, "CodeLoaded") ?? app.status?.conditions?.find((c) => c.type === "CodeLoaded")).toMatchObject({
      status: "True",
    });
    // A new generation is not vouched for by the old status: load it again.
    app.metadata.generation = 4;
    app.spec.env = [{ name: "X", value: "1" }];
    const b = decideApplication(app, mkView([], { configMaps: cms }), NOW + 2000, settings);
    expect(ofKind(b, "createPods")).toMatchObject([{ function: "main", count: 1 }]);
    expect(statusOf(b)?.discovered?.length).toBe(2); // the last table stays visible meanwhile
  });

  it("keeps decorator settings of the last table while new code loads", () => {
    const app = mkApp({}, { discovered: [{ name: "main", application: true, minContainers: 2 }] });
    const a = decideApplication(app, mkView([], { configMaps: [buildSourceConfigMap(app)!] }), NOW, settings);
    expect(ofKind(a, "createPods")).toMatchObject([{ function: "main", count: 2 }]);
  });

  it("replaces failed pods, recreates a lost token Secret, ignores pods it does not own", () => {
    const app = mkApp({ functions: [{ name: "main", minContainers: 1 }] });
    const failed = mkPod(app, "main", { phase: "Failed" });
    const noSecret = mkPod(app, "main", {
      createdAgoMs: 1000,
      ready: false,
      worker: {
        name: "sidecar",
        state: { waiting: { reason: "CreateContainerConfigError", message: "" } },
      },
    });
    noSecret.status!.containerStatuses![0]!.state!.waiting!.message = `secret "${noSecret.metadata.name}.trellis-pod-token" not found`;
    const foreign = mkPod(app, "main");
    foreign.metadata.ownerReferences = [
      { apiVersion: "trellis.dev/v1alpha1", kind: "Application", name: "shop", uid: "other", controller: true },
    ];
    const a = decideApplication(app, mkView([failed, noSecret, foreign]), NOW, settings);
    expect(ofKind(a, "deletePod")).toMatchObject([{ name: failed.metadata.name, reason: "failed" }]);
    expect(events(a)).toContain("PodFailed");
    expect(ofKind(a, "ensurePodSecret")).toEqual([{ kind: "ensurePodSecret", pod: noSecret.metadata.name }]);
    expect(ofKind(a, "createPods")).toEqual([]); // noSecret counts toward min 1
  });

  it("reports an invalid spec naming the field and touches no pods", () => {
    const app = mkApp({ functions: [{ name: "bad-name" }] });
    const pod = mkPod(mkApp(), "main");
    const a = decideApplication(app, mkView([pod]), NOW, settings);
    expect(a.filter((x) => x.kind !== "writeStatus" && x.kind !== "event")).toEqual([]);
    expect(cond(a, "Ready")).toMatchObject({ status: "False", reason: "InvalidSpec" });
    expect(cond(a, "Ready")?.message).toContain("spec.functions[0].name: must be a Python identifier");
    expect(events(a)).toEqual(["InvalidSpec"]);
  });

  it("fails an Application naming another pod's token Secret, naming the field", () => {
    const app = mkApp({ defaults: { secrets: ["shop-main-abcde.trellis-pod-token"] } });
    const a = decideApplication(app, mkView([]), NOW, settings);
    expect(ofKind(a, "createPods")).toEqual([]);
    expect(cond(a, "Ready")).toMatchObject({ status: "False", reason: "InvalidSpec" });
    expect(cond(a, "Ready")?.message).toContain("spec.defaults.secrets[0]");
  });

  it("does nothing for an Application being deleted", () => {
    const app = mkApp();
    app.metadata.deletionTimestamp = new Date(NOW).toISOString();
    expect(decideApplication(app, mkView([]), NOW, settings)).toEqual([]);
  });
});

describe("effectiveFunctionSettings", () => {
  const s = defaultApplicationSettings({
    functionDefaults: { concurrency: 1, minContainers: 0, maxContainers: 10, timeoutSeconds: 300 },
  });
  const decorator: DiscoveredFunction = {
    name: "f",
    maxConcurrency: 8,
    minContainers: 1,
    maxContainers: 4,
    timeoutSeconds: 60,
  };
  it("takes spec.functions over spec.defaults over the decorator over the operator", () => {
    const app = mkApp({ functions: [{ name: "f", concurrency: 2 }], defaults: { concurrency: 3, maxContainers: 6 } });
    expect(effectiveFunctionSettings(app, "f", decorator, s)).toMatchObject({
      concurrency: 2,
      specConcurrency: 2,
      maxContainers: 6,
      minContainers: 1,
      timeoutSeconds: 60,
    });
    expect(effectiveFunctionSettings(mkApp(), "f", undefined, s)).toMatchObject({
      concurrency: 1,
      minContainers: 0,
      maxContainers: 10,
      timeoutSeconds: 300,
    });
    expect(effectiveFunctionSettings(mkApp(), "f", undefined, s).specConcurrency).toBeUndefined();
  });
  it("never lets min exceed max across levels", () => {
    const app = mkApp({ functions: [{ name: "f", maxContainers: 2 }] });
    expect(effectiveFunctionSettings(app, "f", { name: "f", minContainers: 5 }, s)).toMatchObject({
      minContainers: 2,
      maxContainers: 2,
    });
  });
});
