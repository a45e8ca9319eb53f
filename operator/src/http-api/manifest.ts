// Tensorlake's ApplicationManifest of an Application: the one Tensorlake's deploy route stored
// (annotation), else one made from the spec and the function table the runtime discovered, so
// that Tensorlake's client can invoke apps deployed with kubectl or `kubectl trellis deploy`.
import { ANNOTATION, type FunctionSpec, applicationObjectName } from "../../../protocol/index.js";
import type { ApplicationObj, CallObject, HttpApiDeps } from "./types.js";
import { type RequestView, codeLoadFailure, requestView } from "./views.js";
import { cachedCall } from "./shards.js";
import { anyTypeHintPickle, encodeBytesB64, inputManifestsPickle } from "./tensorlake-pickle.js";

/** What the runtime may report per function beyond the CRD fields (tolerated when absent). */
interface DiscoveredExtra {
  name: string;
  timeoutSeconds?: number;
  maxConcurrency?: number;
  minContainers?: number;
  maxContainers?: number;
  parameters?: (string | { name: string })[];
  /** The entrypoint's manifest bits as the worker computes them (trellis/worker/tlmanifest.py). */
  tensorlake?: {
    input_serializer?: string;
    inputs_base64?: string;
    output_serializer?: string;
    output_type_hints_base64?: string;
  };
}

const ms = (t: string | Date | undefined): number | null =>
  t === undefined ? null : (typeof t === "string" ? new Date(t) : t).getTime();

/** An Application by its object name, or by the Tensorlake name it was deployed under. */
export function findApplication(deps: HttpApiDeps, namespace: string, name: string): ApplicationObj | undefined {
  const named = (a: ApplicationObj | undefined) =>
    a && (a.metadata.name === name || a.metadata.annotations?.[ANNOTATION.tensorlakeName] === name) ? a : undefined;
  return (
    deps.applications.get(`${namespace}/${name}`) ??
    named(deps.applications.get(`${namespace}/${applicationObjectName(name)}`)) ??
    deps.applications.list(namespace).find((a) => a.metadata.annotations?.[ANNOTATION.tensorlakeName] === name)
  );
}

/** The manifest the deploy route stored, verbatim, when it is a JSON object. */
export function storedManifest(a: ApplicationObj): { text: string; json: Record<string, unknown> } | undefined {
  const text = a.metadata.annotations?.[ANNOTATION.tensorlakeManifest];
  if (!text) return undefined;
  try {
    const json = JSON.parse(text) as unknown;
    return json && typeof json === "object" && !Array.isArray(json)
      ? { text, json: json as Record<string, unknown> }
      : undefined;
  } catch {
    return undefined;
  }
}

export const appVersion = (a: ApplicationObj): string => {
  const stored = storedManifest(a)?.json.version;
  if (typeof stored === "string") return stored;
  return String(a.metadata.generation ?? a.metadata.resourceVersion ?? "1");
};

const text = (m: Record<string, unknown> | undefined, key: string, fallback: string): string => {
  const v = m?.[key];
  return typeof v === "string" ? v : fallback;
};

/** Tensorlake's `Application` entry of the list route, plus Trellis' own fields. */
export function applicationListEntry(a: ApplicationObj) {
  const m = storedManifest(a)?.json;
  const discovered = a.status?.discovered?.map((f) => f.name) ?? [];
  const configured = (a.spec.functions ?? []).map((f) => f.name);
  return {
    name: text(m, "name", a.metadata.name ?? ""),
    description: text(m, "description", ""),
    tags: (m?.tags as Record<string, string> | undefined) ?? {},
    version: appVersion(a),
    created_at: ms(a.metadata.creationTimestamp),
    tombstoned: false,
    namespace: a.metadata.namespace ?? "",
    entrypoint: a.spec.entrypoint,
    functions: [...new Set([a.spec.entrypoint, ...discovered, ...configured])].sort(),
    ready: a.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
  };
}

/** A Kubernetes quantity in base units (bytes, cores); undefined when it does not parse. */
export function quantity(q: string | undefined): number | undefined {
  const m = q?.match(/^([+-]?[0-9.]+)([a-zA-Z]*)$/);
  if (!m) return undefined;
  const pow: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50 };
  const dec: Record<string, number> = { "": 1, m: 1e-3, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 };
  const f = pow[m[2]!] ?? dec[m[2]!];
  return f === undefined ? undefined : Number(m[1]) * f;
}

const MIB = 2 ** 20;

function resourcesManifest(r: NonNullable<FunctionSpec["resources"]>) {
  return {
    cpus: quantity(r.cpu) ?? 1,
    memory_mb: Math.ceil((quantity(r.memory) ?? 1024 * MIB) / MIB),
    ephemeral_disk_mb: Math.ceil((quantity(r.ephemeralStorage) ?? 2048 * MIB) / MIB),
    gpus: r.gpu ? [{ count: r.gpu, model: "nvidia.com/gpu" }] : [],
  };
}

function retryManifest(r: FunctionSpec["retries"]) {
  return {
    max_retries: r?.maxRetries ?? 0,
    initial_delay_sec: r?.initialDelaySeconds ?? 1,
    max_delay_sec: r?.maxDelaySeconds ?? 60,
    delay_multiplier: r?.delayMultiplier ?? 2,
  };
}

/** The spec's settings win over the decorator's (the runtime's table), as for the containers. */
function functionManifest(name: string, spec: Partial<FunctionSpec>, found: DiscoveredExtra = { name }) {
  const timeout = Math.ceil(spec.timeoutSeconds ?? found.timeoutSeconds ?? 300);
  return {
    name,
    description: "",
    docstring: "",
    secret_names: spec.secrets ?? [],
    initialization_timeout_sec: timeout,
    timeout_sec: timeout,
    resources: resourcesManifest(spec.resources ?? {}),
    retry_policy: retryManifest(spec.retries),
    cache_key: null,
    parameters: [],
    return_type: null,
    placement_constraints: { filter_expressions: [] },
    max_concurrency: spec.concurrency ?? found.maxConcurrency ?? 1,
    min_containers: spec.minContainers ?? found.minContainers ?? null,
    max_containers: spec.maxContainers ?? found.maxContainers ?? null,
  };
}

/** A valid ApplicationManifest made from the Application (no Tensorlake deploy behind it). */
export function synthesizeManifest(a: ApplicationObj) {
  const found = new Map((a.status?.discovered ?? []).map((f) => [f.name, f as DiscoveredExtra]));
  const settings = new Map((a.spec.functions ?? []).map((f) => [f.name, f]));
  const names = [...new Set([a.spec.entrypoint, ...found.keys(), ...settings.keys()])].sort();
  const functions: Record<string, ReturnType<typeof functionManifest>> = {};
  for (const n of names) functions[n] = functionManifest(n, { ...a.spec.defaults, ...settings.get(n) }, found.get(n));
  const entry = found.get(a.spec.entrypoint);
  const params = (entry?.parameters ?? []).map((p) => (typeof p === "string" ? p : p.name));
  const tl = entry?.tensorlake ?? {};
  return {
    name: a.metadata.name ?? "",
    description: "",
    tags: {},
    version: appVersion(a),
    runtime: "python",
    functions,
    entrypoint: {
      function_name: a.spec.entrypoint,
      input_serializer: tl.input_serializer ?? "json",
      inputs_base64: tl.inputs_base64 ?? encodeBytesB64(inputManifestsPickle(params)),
      output_serializer: tl.output_serializer ?? "json",
      output_type_hints_base64: tl.output_type_hints_base64 ?? encodeBytesB64(anyTypeHintPickle()),
    },
  };
}

/** Tensorlake's RequestMetadata (plus Trellis' fields) of a request's root call. */
export function requestMetadata(deps: HttpApiDeps, c: CallObject): RequestView {
  const ns = c.metadata.namespace ?? "";
  const a = deps.applications.get(`${ns}/${c.spec.application}`);
  return requestView(c, {
    // The call that raised may be a map item: found through its shard.
    call: (n) => cachedCall(deps, ns, c.spec.request ?? c.metadata.name ?? "", n),
    version: a ? appVersion(a) : "",
    codeLoadFailure: a ? codeLoadFailure(a) : undefined,
  });
}
