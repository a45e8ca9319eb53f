// Application status: conditions, per-function counts, the discovered function table. Pure.
import type { ApplicationSpec, ApplicationStatus, Condition } from "../../../protocol/index.js";
import { setCondition, type ConditionInput } from "./conditions.js";
import type { PodProblem } from "./pod-health.js";
import type { DiscoveredFunction } from "./types.js";

export type CodeState =
  | { kind: "loaded"; table: DiscoveredFunction[]; fresh: boolean }
  | { kind: "failed"; message: string; fresh: boolean }
  | { kind: "unknown" };

export interface FunctionCounts {
  name: string;
  minContainers: number;
  ready: number;
  busy: number;
  queued: number;
  running: number;
}

export interface StatusInput {
  old: ApplicationStatus;
  generation: number;
  nowIso: string;
  /** Validation errors: only Ready and observedGeneration change. */
  invalid?: string[];
  spec?: ApplicationSpec;
  code?: CodeState;
  functions?: FunctionCounts[];
  problems?: (PodProblem & { pod: string })[];
}

const MAX_LISTED = 20;
const list = (xs: string[]) =>
  xs.length <= MAX_LISTED ? xs.join(", ") : `${xs.slice(0, MAX_LISTED).join(", ")} and ${xs.length - MAX_LISTED} more`;

/** The table as the status schema holds it (the schema prunes unknown fields: keep to it exactly). */
export function statusTable(table: DiscoveredFunction[]): NonNullable<ApplicationStatus["discovered"]> {
  return [...table]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((f) => {
      const e: NonNullable<ApplicationStatus["discovered"]>[number] = { name: f.name };
      if (f.async !== undefined) e.async = f.async;
      if (f.application !== undefined) e.application = f.application;
      if (f.timeoutSeconds !== undefined) e.timeoutSeconds = f.timeoutSeconds;
      if (f.maxConcurrency !== undefined) e.maxConcurrency = f.maxConcurrency;
      if (f.minContainers !== undefined) e.minContainers = f.minContainers;
      if (f.maxContainers !== undefined) e.maxContainers = f.maxContainers;
      if (f.parameters !== undefined) e.parameters = f.parameters;
      if (f.tensorlake !== undefined) e.tensorlake = f.tensorlake;
      return e;
    });
}

function codeLoaded(code: CodeState, generation: number): ConditionInput {
  switch (code.kind) {
    case "loaded": {
      const names = code.table.map((f) => f.name).sort();
      return {
        type: "CodeLoaded",
        status: "True",
        reason: "Loaded",
        message: `the code defines ${names.length} function${names.length === 1 ? "" : "s"}: ${list(names)}`,
        observedGeneration: generation,
      };
    }
    case "failed":
      return {
        type: "CodeLoaded",
        status: "False",
        reason: "CodeLoadFailed",
        message: code.message,
        observedGeneration: generation,
      };
    case "unknown":
      return {
        type: "CodeLoaded",
        status: "Unknown",
        reason: "Loading",
        message: "waiting for a container to load the code",
        observedGeneration: generation,
      };
  }
}

function specMatchesCode(spec: ApplicationSpec, code: CodeState, generation: number): ConditionInput {
  if (code.kind !== "loaded") {
    return {
      type: "SpecMatchesCode",
      status: "Unknown",
      reason: "CodeNotLoaded",
      message: "the function table is not known yet",
      observedGeneration: generation,
    };
  }
  const inCode = new Set(code.table.map((f) => f.name));
  const named = [spec.entrypoint, ...(spec.functions ?? []).map((f) => f.name)];
  const missing = [...new Set(named.filter((n) => !inCode.has(n)))];
  if (missing.length) {
    return {
      type: "SpecMatchesCode",
      status: "False",
      reason: inCode.has(spec.entrypoint) ? "FunctionsMissing" : "EntrypointMissing",
      message: `named in the spec but not defined in the code: ${list(missing)}`,
      observedGeneration: generation,
    };
  }
  const configured = new Set(named);
  const decoratorOnly = [...inCode].filter((n) => !configured.has(n)).sort();
  return {
    type: "SpecMatchesCode",
    status: "True",
    reason: "Matches",
    message:
      `every function the spec names is defined in the code` +
      (decoratorOnly.length ? `; using decorator settings only: ${list(decoratorOnly)}` : ""),
    observedGeneration: generation,
  };
}

function containersHealthy(problems: (PodProblem & { pod: string })[], generation: number): ConditionInput {
  if (!problems.length) {
    return {
      type: "ContainersHealthy",
      status: "True",
      reason: "Healthy",
      message: "no container is failing",
      observedGeneration: generation,
    };
  }
  const sorted = [...problems].sort((a, b) => a.pod.localeCompare(b.pod));
  const shown = sorted.slice(0, 3).map((p) => `pod ${p.pod}: ${p.message}`);
  if (sorted.length > 3) shown.push(`and ${sorted.length - 3} more pods`);
  return {
    type: "ContainersHealthy",
    status: "False",
    reason: sorted[0]!.reason,
    message: shown.join("; "),
    observedGeneration: generation,
  };
}

function ready(
  code: CodeState,
  match: ConditionInput,
  functions: FunctionCounts[],
  generation: number,
): ConditionInput {
  const c = (status: Condition["status"], reason: string, message: string): ConditionInput => ({
    type: "Ready",
    status,
    reason,
    message,
    observedGeneration: generation,
  });
  if (code.kind === "failed") return c("False", "CodeLoadFailed", "the code failed to load (see CodeLoaded)");
  if (code.kind === "unknown") return c("False", "Loading", "waiting for a container to load the code");
  if (match.reason === "EntrypointMissing") return c("False", "EntrypointMissing", match.message);
  const waiting = functions.filter((f) => f.minContainers > 0 && f.ready === 0).map((f) => f.name);
  if (waiting.length) return c("False", "ContainersNotReady", `waiting for ready containers of: ${list(waiting)}`);
  return c("True", "Ready", "the code is loaded and every function with minContainers has ready containers");
}

export function buildStatus(i: StatusInput): ApplicationStatus {
  if (i.invalid) {
    return {
      ...i.old,
      observedGeneration: i.generation,
      conditions: setCondition(
        i.old.conditions,
        {
          type: "Ready",
          status: "False",
          reason: "InvalidSpec",
          message: i.invalid.join("; "),
          observedGeneration: i.generation,
        },
        i.nowIso,
      ),
    };
  }
  const code = i.code ?? { kind: "unknown" };
  const functions = i.functions ?? [];
  const match = specMatchesCode(i.spec!, code, i.generation);
  let conditions = i.old.conditions;
  for (const c of [
    ready(code, match, functions, i.generation),
    codeLoaded(code, i.generation),
    containersHealthy(i.problems ?? [], i.generation),
    match,
  ]) {
    conditions = setCondition(conditions, c, i.nowIso);
  }
  const status: ApplicationStatus = {
    observedGeneration: i.generation,
    conditions,
    functions: functions.map(({ name, ready, busy, queued, running }) => ({ name, ready, busy, queued, running })),
    readyContainers: functions.reduce((n, f) => n + f.ready, 0),
  };
  const discovered = code.kind === "loaded" ? statusTable(code.table) : i.old.discovered;
  if (discovered) status.discovered = discovered;
  return status;
}

/** JSON with sorted keys and no undefined: equal objects give equal strings. */
export function canonical(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>)
            .filter(([, e]) => e !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

const withoutCounters = (s: ApplicationStatus) => ({
  ...s,
  functions: s.functions?.map(({ name, ready }) => ({ name, ready })),
});

/** The merge patch turning `old` into `next`, or undefined when they are equal. */
export function statusDiff(
  old: ApplicationStatus,
  next: ApplicationStatus,
): { patch: Record<string, unknown>; countersOnly: boolean } | undefined {
  if (canonical(old) === canonical(next)) return undefined;
  const patch: Record<string, unknown> = { ...next };
  for (const k of Object.keys(old)) if (!(k in next)) patch[k] = null;
  return { patch, countersOnly: canonical(withoutCounters(old)) === canonical(withoutCounters(next)) };
}
