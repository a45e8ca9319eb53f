// Operator-level settings of the Application controller, and the effective settings of one
// function (spec.functions[name] > spec.defaults > decorator values > operator defaults).
import { z } from "zod";
import { NODE_LOSS_TOLERATION_MAX, type Application, type FunctionSpec } from "../../../protocol/index.js";
import type { DiscoveredFunction } from "./types.js";

const quantity = z.string().regex(/^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/, {
  message: "must be a Kubernetes quantity (e.g. 500m, 1Gi)",
});

/** Parsed once in main.ts (config is zod there too); every field has a default. */
export const applicationSettings = z.object({
  /** The stock runtime image: the sidecar always, the worker when the Application names none. */
  runtimeImage: z.string().min(1).default("localhost/trellis-runtime:dev"),
  runtimeImagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
  /** URL sidecars reach the operator's runtime API at (Service DNS name, or 127.0.0.1 with hostNetwork). */
  operatorUrl: z.url().default("http://127.0.0.1:8081"),
  /** The local cluster needs it to reach 127.0.0.1; off on real clusters. */
  hostNetwork: z.boolean().default(false),
  /** Time a deleted pod gets to drain its running calls. */
  terminationGracePeriodSeconds: z.number().int().min(0).max(86400).default(60),
  /**
   * How long function pods stay on a node that is not ready or unreachable before taint-based
   * eviction moves them (and so their calls) elsewhere; Kubernetes' own default is 300 s.
   * An Application's spec.nodeLossTolerationSeconds overrides it.
   */
  nodeLossTolerationSeconds: z.number().int().min(0).max(NODE_LOSS_TOLERATION_MAX).default(30),
  /** Pods beyond minContainers idle this long are deleted. */
  idleTimeoutSeconds: z.number().int().min(0).max(86400).default(300),
  /** Throttle of status writes that only change counters (queued, running, busy). */
  countersWriteIntervalMs: z.number().int().min(0).max(60000).default(1000),
  /** Backlog changes of one Application reconcile it at once, then at most once per this interval. */
  backlogCoalesceMs: z.number().int().min(0).max(10000).default(100),
  /** Pods stuck in a container-config error this long are reported (the token Secret races pod start). */
  configErrorGraceSeconds: z.number().int().min(0).max(3600).default(20),
  workerReadOnlyRootFilesystem: z.boolean().default(true),
  /** Fingerprint of the per-pod credential key: pods issued under another key are replaced. */
  credentialKeyId: z.string().default(""),
  /** "<namespace>/<name>" of the operator's own Secrets (its key), which no Application may name. */
  reservedSecrets: z.array(z.string()).default([]),
  // The sidecar holds a value it carries several times over while it converts it (JSON of the
  // worker's frame, the blob document, base64): measured, a 24 MiB value took it past 256Mi.
  sidecarResources: z
    .object({
      requests: z.record(z.string(), quantity).default({ cpu: "10m", memory: "64Mi" }),
      limits: z.record(z.string(), quantity).default({ memory: "768Mi" }),
    })
    .default({ requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "768Mi" } }),
  functionDefaults: z
    .object({
      concurrency: z.number().int().min(1).default(1),
      minContainers: z.number().int().min(0).default(0),
      maxContainers: z.number().int().min(1).default(10),
      timeoutSeconds: z.number().int().min(1).default(300),
    })
    .default({ concurrency: 1, minContainers: 0, maxContainers: 10, timeoutSeconds: 300 }),
});
export type ApplicationSettings = z.infer<typeof applicationSettings>;
export const defaultApplicationSettings = (over: z.input<typeof applicationSettings> = {}): ApplicationSettings =>
  applicationSettings.parse(over);

export interface EffectiveFunctionSettings {
  name: string;
  concurrency: number;
  /** Concurrency set in the spec; when absent the worker takes its decorator's max_concurrency. */
  specConcurrency?: number;
  minContainers: number;
  maxContainers: number;
  timeoutSeconds: number;
  retries: FunctionSpec["retries"];
  resources: NonNullable<FunctionSpec["resources"]>;
  /** Application env, then defaults, then the function's (later names win). */
  env: { name: string; value: string }[];
  /** Secrets of defaults then of the function, without duplicates. */
  secrets: string[];
}

const pick = <T>(...xs: (T | undefined)[]): T | undefined => xs.find((x) => x !== undefined);

/** What every level may set; the decorator calls concurrency maxConcurrency. */
type Level = Partial<
  Pick<FunctionSpec, "concurrency" | "minContainers" | "maxContainers" | "timeoutSeconds" | "retries">
>;

const decoratorLevel = (f: DiscoveredFunction | undefined): Level => ({
  concurrency: f?.maxConcurrency,
  minContainers: f?.minContainers,
  maxContainers: f?.maxContainers,
  timeoutSeconds: f?.timeoutSeconds,
  retries: f?.retries,
});

/** The value of the first level that sets `key`. */
const fromLevels = <K extends keyof Level>(levels: (Level | undefined)[], key: K): Level[K] =>
  pick(...levels.map((l) => l?.[key]));

/** Later names win. */
function mergedEnv(...lists: ({ name: string; value: string }[] | undefined)[]): { name: string; value: string }[] {
  const env = new Map<string, string>();
  for (const e of lists.flatMap((l) => l ?? [])) env.set(e.name, e.value);
  return [...env].map(([n, value]) => ({ name: n, value }));
}

export function effectiveFunctionSettings(
  app: Pick<Application, "spec">,
  name: string,
  discovered: DiscoveredFunction | undefined,
  settings: Pick<ApplicationSettings, "functionDefaults">,
): EffectiveFunctionSettings {
  const fn = app.spec.functions?.find((f) => f.name === name);
  const d = app.spec.defaults;
  const levels = [fn, d, decoratorLevel(discovered), settings.functionDefaults];
  const concurrency = fromLevels(levels, "concurrency")!;
  const maxContainers = fromLevels(levels, "maxContainers")!;
  // Levels may disagree (spec max 2, decorator min 5): the bound set closer to the user wins,
  // and min never exceeds max.
  const minContainers = Math.min(fromLevels(levels, "minContainers")!, maxContainers);
  const timeoutSeconds = fromLevels(levels, "timeoutSeconds")!;
  const specConcurrency = pick(fn?.concurrency, d?.concurrency);
  return {
    name,
    concurrency: Math.max(1, Math.floor(concurrency)),
    ...(specConcurrency !== undefined ? { specConcurrency } : {}),
    minContainers: Math.max(0, Math.floor(minContainers)),
    maxContainers: Math.max(1, Math.floor(maxContainers)),
    timeoutSeconds,
    retries: fromLevels(levels, "retries"),
    resources: { ...(d?.resources ?? {}), ...(fn?.resources ?? {}) },
    env: mergedEnv(app.spec.env, d?.env, fn?.env),
    secrets: [...new Set([...(d?.secrets ?? []), ...(fn?.secrets ?? [])])],
  };
}
