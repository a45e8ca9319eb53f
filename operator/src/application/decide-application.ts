// The pure decision of the Application reconciler: observed state in, actions out.
import { type ApplicationSpec, type ApplicationStatus, LABEL } from "../../../protocol/index.js";
import { findCondition } from "./conditions.js";
import { buildSourceConfigMap, codeHash, podTemplateHash } from "./pod-builder.js";
import { observePod, type ObservedPod } from "./pod-health.js";
import { decideScale, type DeleteReason, type ScaleDecision, type ScalePod } from "./scale-decide.js";
import { effectiveFunctionSettings, type ApplicationSettings, type EffectiveFunctionSettings } from "./settings.js";
import { buildStatus, statusDiff, type CodeState, type FunctionCounts } from "./status.js";
import type { ApplicationObject, Backlog, ConfigMap, DiscoveredFunction, Pod, PodActivity } from "./types.js";
import { validateApplication } from "./validate.js";

/** What the reconciler sees of one Application's world. */
export interface ApplicationView {
  /** Pods labelled with the Application's name (the decision checks ownership). */
  pods: Pod[];
  /** Source ConfigMaps labelled with the Application's name. */
  configMaps: ConfigMap[];
  backlog(fn: string): Backlog;
  /** Functions with queued or running calls. */
  backlogFunctions: string[];
  activity(pod: string): PodActivity | undefined;
  /**
   * When this operator began hearing from pods (ms since epoch). A pod it has not seen finish a
   * call counts as busy until then: after a failover, pods that were running calls a moment ago
   * must not be reaped as idle before their sidecars report in.
   */
  observingSince?: number;
}

/** The Application with its spec as validated (zod defaults applied): pods are built from it. */
export type NormalizedApp = Pick<ApplicationObject, "metadata" | "spec">;

export type Action =
  | { kind: "createConfigMap"; configMap: ConfigMap }
  | { kind: "deleteConfigMap"; name: string }
  | { kind: "createPods"; function: string; count: number; app: NormalizedApp; settings: EffectiveFunctionSettings }
  | { kind: "deletePod"; name: string; function: string; reason: DeleteReason }
  | { kind: "ensurePodSecret"; pod: string }
  /** `patch` is a JSON merge patch of status; `countersOnly` writes may be throttled. */
  | { kind: "writeStatus"; patch: Record<string, unknown>; status: ApplicationStatus; countersOnly: boolean }
  | { kind: "event"; type: "Normal" | "Warning"; reason: string; message: string }
  | { kind: "requeueAfter"; ms: number };

const owns = (app: ApplicationObject, pod: { metadata: Pod["metadata"] }): boolean => {
  const uid = app.metadata.uid;
  if (!uid) return true;
  return pod.metadata.ownerReferences?.some((o) => o.uid === uid && o.controller === true) ?? false;
};

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function decideApplication(
  app: ApplicationObject,
  view: ApplicationView,
  now: number,
  settings: ApplicationSettings,
): Action[] {
  if (app.metadata.deletionTimestamp) return []; // garbage collection removes what it owns
  const nowIso = new Date(now).toISOString();
  const generation = app.metadata.generation ?? 0;
  const old = app.status ?? {};

  const validated = validateApplication(app, settings.reservedSecrets);
  if (!validated.ok) return invalidSpecActions(old, generation, nowIso, validated.errors);
  const actions: Action[] = [];
  const napp: NormalizedApp = { metadata: app.metadata, spec: validated.spec };
  const currentCode = codeHash(napp, settings);

  const pods = view.pods.filter((p) => owns(app, p));
  const observed = pods.map((p) => ({ pod: p, o: observePod(p, now, settings.configErrorGraceSeconds) }));
  const live = observed.filter(({ o }) => !o.terminating && !o.failed);

  const code = codeState(app, generation, live, (name) => view.activity(name), currentCode);
  const table = code.kind === "loaded" ? new Map(code.table.map((f) => [f.name, f])) : undefined;
  // Decorator values: the current table, else the last one published (keeps min_containers warm
  // while new code rolls out).
  const decorators = table ?? new Map((old.discovered ?? []).map((f) => [f.name, f as DiscoveredFunction]));
  const ctx: FunctionContext = { napp, spec: validated.spec, view, now, settings, code, table, decorators, observed };

  const counts: FunctionCounts[] = [];
  let nextCheckAt: number | undefined;
  for (const fn of managedFunctions(ctx)) {
    const r = decideFunction(ctx, fn, actions);
    counts.push(r.counts);
    if (r.nextCheckAt !== undefined) nextCheckAt = Math.min(nextCheckAt ?? Infinity, r.nextCheckAt);
  }
  actions.push(...sourceConfigMapActions(app, napp, view.configMaps, pods));

  const status = buildStatus({
    old,
    generation,
    nowIso,
    spec: validated.spec,
    code,
    functions: counts,
    problems: live.flatMap(({ o }) => (o.problem ? [{ pod: o.name, ...o.problem }] : [])),
  });
  pushStatus(actions, old, status);
  actions.push(...transitionEvents(old, status));
  if (nextCheckAt !== undefined) actions.push({ kind: "requeueAfter", ms: Math.max(0, nextCheckAt - now) });
  return actions;
}

function invalidSpecActions(old: ApplicationStatus, generation: number, nowIso: string, errors: string[]): Action[] {
  const actions: Action[] = [];
  const status = buildStatus({ old, generation, nowIso, invalid: errors });
  pushStatus(actions, old, status);
  // Warn when the spec becomes invalid, not on every reconcile.
  if (findCondition(old.conditions, "Ready")?.reason !== "InvalidSpec") {
    actions.push({ kind: "event", type: "Warning", reason: "InvalidSpec", message: errors.join("; ") });
  }
  return actions;
}

type Observed = { pod: Pod; o: ObservedPod };

/** What the decision for each function shares. */
interface FunctionContext {
  napp: NormalizedApp;
  spec: ApplicationSpec;
  view: ApplicationView;
  now: number;
  settings: ApplicationSettings;
  code: CodeState;
  /** The loaded code's functions; undefined while no table is known. */
  table: Map<string, DiscoveredFunction> | undefined;
  decorators: Map<string, DiscoveredFunction>;
  observed: Observed[];
}

/** Functions the controller looks after: named by the spec, found in the code, with work, or with pods. */
function managedFunctions(c: FunctionContext): string[] {
  const names = new Set<string>([c.spec.entrypoint]);
  for (const f of c.spec.functions ?? []) names.add(f.name);
  for (const f of c.table?.keys() ?? []) names.add(f);
  for (const f of c.view.backlogFunctions) names.add(f);
  for (const { o } of c.observed) if (o.function) names.add(o.function);
  return [...names].sort();
}

/** Scales one function's pods; pushes its actions and returns its status counts. */
function decideFunction(
  c: FunctionContext,
  fn: string,
  actions: Action[],
): { counts: FunctionCounts; nextCheckAt?: number } {
  // A function the loaded code does not define gets no pods (its calls fail in the engine).
  const known = !c.table || c.table.has(fn);
  const eff = effectiveFunctionSettings(c.napp, fn, c.decorators.get(fn), c.settings);
  const template = podTemplateHash(c.napp, eff, c.settings);
  const mine = c.observed.filter(({ o }) => o.function === fn);
  const backlog = known ? c.view.backlog(fn) : { queued: 0, running: 0 };
  const minContainers = known ? eff.minContainers : 0;
  const decision = decideScale({
    queued: backlog.queued,
    running: backlog.running,
    concurrency: eff.concurrency,
    minContainers,
    maxContainers: eff.maxContainers,
    // Until the current code is known to load, keep one entrypoint pod to load it.
    floor: c.code.kind === "unknown" && fn === c.spec.entrypoint ? 1 : 0,
    pods: mine.map(({ o }) =>
      scalePod(o, known && o.templateHash === template, c.view.activity(o.name), c.view.observingSince ?? 0),
    ),
    now: c.now,
    idleTimeoutMs: c.settings.idleTimeoutSeconds * 1000,
  });

  actions.push(...deleteActions(fn, decision.delete, mine));
  if (decision.create > 0) {
    actions.push({ kind: "createPods", function: fn, count: decision.create, app: c.napp, settings: eff });
    actions.push({
      kind: "event",
      type: "Normal",
      reason: "ScaledUp",
      message:
        `creating ${plural(decision.create, "pod")} for function ${fn} (desired ${decision.desired}: ` +
        `${backlog.queued} queued, ${backlog.running} running, concurrency ${eff.concurrency})`,
    });
  }
  for (const { o } of mine)
    if (o.missingTokenSecret && !o.terminating) actions.push({ kind: "ensurePodSecret", pod: o.name });

  return { counts: functionCounts(fn, minContainers, backlog, mine, c.view), nextCheckAt: decision.nextCheckAt };
}

function scalePod(o: ObservedPod, current: boolean, act: PodActivity | undefined, since: number): ScalePod {
  return {
    name: o.name,
    current,
    terminating: o.terminating,
    failed: o.failed,
    ready: o.podReady && (act?.registered ?? false),
    running: act?.running ?? 0,
    idleSince: Math.max(o.createdAt, act?.lastBusyAt ?? since),
    unhealthy: o.problem !== undefined,
  };
}

/** A deletion per pod; a failed pod gets its own event, idle ones share one. */
function deleteActions(fn: string, deletes: ScaleDecision["delete"], mine: Observed[]): Action[] {
  const actions: Action[] = [];
  const failedPods = new Map(mine.filter(({ o }) => o.failed).map(({ o }) => [o.name, o.failedReason]));
  for (const d of deletes) {
    actions.push({ kind: "deletePod", name: d.name, function: fn, reason: d.reason });
    if (d.reason === "failed") {
      actions.push({
        kind: "event",
        type: "Warning",
        reason: "PodFailed",
        message: `pod ${d.name} of function ${fn} failed (${failedPods.get(d.name) ?? "unknown"}); replacing it`,
      });
    }
  }
  const idle = deletes.filter((d) => d.reason === "idle").map((d) => d.name);
  if (idle.length) {
    actions.push({
      kind: "event",
      type: "Normal",
      reason: "ScaledDown",
      message: `deleted ${plural(idle.length, "idle pod")} of function ${fn}: ${idle.join(", ")}`,
    });
  }
  return actions;
}

function functionCounts(
  fn: string,
  minContainers: number,
  backlog: Backlog,
  mine: Observed[],
  view: ApplicationView,
): FunctionCounts {
  const fnLive = mine.filter(({ o }) => !o.terminating && !o.failed);
  const activities = fnLive.map(({ o }) => ({ o, act: view.activity(o.name) }));
  return {
    name: fn,
    minContainers,
    ready: activities.filter(({ o, act }) => o.podReady && act?.registered).length,
    busy: activities.filter(({ act }) => (act?.running ?? 0) > 0).length,
    queued: backlog.queued,
    running: backlog.running,
  };
}

/** Inline source: an immutable ConfigMap per content; older ones go once no pod mounts them. */
function sourceConfigMapActions(
  app: ApplicationObject,
  napp: NormalizedApp,
  configMaps: ConfigMap[],
  pods: Pod[],
): Action[] {
  const actions: Action[] = [];
  const cm = buildSourceConfigMap(napp);
  const ownedCms = configMaps.filter((c) => owns(app, c));
  if (cm && !ownedCms.some((c) => c.metadata.name === cm.metadata.name)) {
    actions.push({ kind: "createConfigMap", configMap: cm });
  }
  const mounted = new Set(
    pods.flatMap((p) => (p.spec?.volumes ?? []).map((v) => v.configMap?.name).filter((n): n is string => !!n)),
  );
  for (const c of ownedCms) {
    const name = c.metadata.name ?? "";
    if (name !== cm?.metadata.name && !mounted.has(name) && c.metadata.labels?.[LABEL.component] === "source") {
      actions.push({ kind: "deleteConfigMap", name });
    }
  }
  return actions;
}

function pushStatus(actions: Action[], old: ApplicationStatus, status: ApplicationStatus) {
  const diff = statusDiff(old, status);
  if (diff) actions.push({ kind: "writeStatus", patch: diff.patch, status, countersOnly: diff.countersOnly });
}

/** What is known of the current code: a table from a pod running it, a load failure, or the last status. */
function codeState(
  app: ApplicationObject,
  generation: number,
  live: { o: ObservedPod; pod: Pod }[],
  activity: (pod: string) => PodActivity | undefined,
  currentCode: string,
): CodeState {
  const running = live
    .filter(({ pod }) => pod.metadata.labels?.[LABEL.codeHash] === currentCode)
    .sort((a, b) => a.o.name.localeCompare(b.o.name));
  for (const { o } of running) {
    const act = activity(o.name);
    if (act?.registered && act.functions) return { kind: "loaded", table: act.functions, fresh: true };
  }
  const failed = running.find(({ o }) => o.loadError !== undefined && !activity(o.name)?.registered);
  if (failed) return { kind: "failed", message: `pod ${failed.o.name}: ${failed.o.loadError}`, fresh: true };
  // Nothing running the current code has spoken yet (scaled to zero, or the operator restarted):
  // the last status holds if it was computed for this generation.
  const prev = findCondition(app.status?.conditions, "CodeLoaded");
  if (prev?.observedGeneration === generation) {
    if (prev.status === "True") {
      return { kind: "loaded", table: (app.status?.discovered ?? []) as DiscoveredFunction[], fresh: false };
    }
    if (prev.status === "False" && prev.reason === "CodeLoadFailed") {
      return { kind: "failed", message: prev.message ?? "", fresh: false };
    }
  }
  return { kind: "unknown" };
}

/** Events for condition transitions a human should see. */
function transitionEvents(old: ApplicationStatus, next: ApplicationStatus): Action[] {
  return [codeLoadFailedEvent(old, next), unhealthyEvent(old, next)].filter((a): a is Action => a !== undefined);
}

/** On a new load failure, or a different one. */
function codeLoadFailedEvent(old: ApplicationStatus, next: ApplicationStatus): Action | undefined {
  const code = findCondition(next.conditions, "CodeLoaded");
  const before = findCondition(old.conditions, "CodeLoaded");
  if (code?.status !== "False" || (before?.status === "False" && before.message === code.message)) return undefined;
  return { kind: "event", type: "Warning", reason: "CodeLoadFailed", message: code.message ?? "" };
}

/** On containers turning unhealthy, or unhealthy for another reason. */
function unhealthyEvent(old: ApplicationStatus, next: ApplicationStatus): Action | undefined {
  const health = findCondition(next.conditions, "ContainersHealthy");
  const before = findCondition(old.conditions, "ContainersHealthy");
  if (health?.status !== "False") return undefined;
  if (before?.status === "False" && before.reason === health.reason && before.message === health.message) {
    return undefined;
  }
  const reason = health.reason === "CrashLoopBackOff" ? "PodCrashLooping" : (health.reason ?? "PodUnhealthy");
  return { kind: "event", type: "Warning", reason, message: health.message ?? "" };
}
