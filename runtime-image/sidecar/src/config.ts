// Sidecar configuration: read once from the environment (the pod builder sets these, see
// operator/src/application/names.ts) and validated, so a bad pod spec fails with the variable named.
//
//   TRELLIS_OPERATOR_URL        runtime API base URL (required)
//   TRELLIS_POD_NAMESPACE/NAME  this pod (required; downward API)
//   TRELLIS_POD_TOKEN           per-pod credential, or TRELLIS_POD_TOKEN_FILE (one required)
//   TRELLIS_FUNCTION            the function this pod serves (required)
//   TRELLIS_APPLICATION         for logs
//   TRELLIS_CONCURRENCY         capacity; default: the worker's (hello.concurrency)
//   TRELLIS_SOCKET              worker socket (/run/trellis/worker.sock)
//   TRELLIS_SDK_SOURCE          SDK to copy (/opt/trellis/python; "" = no copy)
//   TRELLIS_SDK_DIR             where to copy it (/run/trellis/python)
//   TRELLIS_READY_FILE          written once serving (<socket dir>/sidecar.ready)
//   TRELLIS_HEARTBEAT_INTERVAL_MS      override of the operator's interval
//   TRELLIS_WORKER_HEARTBEAT_MS        sidecar → worker heartbeat (5000)
//   TRELLIS_WORKER_HEARTBEAT_TIMEOUT_MS  no answer this long = hung worker (15000)
//   TRELLIS_TIMEOUT_GRACE_MS    attempt backstop: timeout + this (10000; the operator uses 15000)
//   TRELLIS_WORKER_RETURN_MS    calls leased while no worker is connected wait this long (60000)
//   TRELLIS_DRAIN_DEADLINE_SECONDS  SIGTERM drain deadline (50, under the pod's 60 s grace)
//   TRELLIS_PROGRESS_INTERVAL_MS    at most one progress report per call per interval (250)
//   TRELLIS_LOG_LEVEL           debug | info | warn | error (info)
//   TRELLIS_VALUES_DIR          spilled values, on the volume shared with the worker (<socket dir>/values)
//   TRELLIS_SPILL_THRESHOLD_BYTES  values over this cross the socket as files (8 MiB; 0 = never)
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import {
  MAX_FRAME_BYTES,
  POD_PATHS,
  pythonIdentifier,
  SIDECAR_ENV,
  SPILL_THRESHOLD_BYTES,
} from "../../../protocol/index.js";

/** Variables beyond the pod builder's contract (all optional, with defaults). */
export const EXTRA_ENV = {
  podTokenFile: "TRELLIS_POD_TOKEN_FILE",
  sdkSource: "TRELLIS_SDK_SOURCE",
  readyFile: "TRELLIS_READY_FILE",
  heartbeatIntervalMs: "TRELLIS_HEARTBEAT_INTERVAL_MS",
  workerHeartbeatMs: "TRELLIS_WORKER_HEARTBEAT_MS",
  workerHeartbeatTimeoutMs: "TRELLIS_WORKER_HEARTBEAT_TIMEOUT_MS",
  timeoutGraceMs: "TRELLIS_TIMEOUT_GRACE_MS",
  workerReturnMs: "TRELLIS_WORKER_RETURN_MS",
  drainDeadlineSeconds: "TRELLIS_DRAIN_DEADLINE_SECONDS",
  progressIntervalMs: "TRELLIS_PROGRESS_INTERVAL_MS",
  logLevel: "TRELLIS_LOG_LEVEL",
  valuesDir: "TRELLIS_VALUES_DIR",
  spillThresholdBytes: "TRELLIS_SPILL_THRESHOLD_BYTES",
} as const;

const intFromEnv = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]+$/, { message: "must be a whole number" })
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const nonEmpty = z.string().trim().min(1, { message: "must not be empty" });

const schema = z.object({
  operatorUrl: z.url({ protocol: /^https?$/, message: "must be an http:// or https:// URL" }),
  podNamespace: nonEmpty,
  podName: nonEmpty,
  application: z.string().optional(),
  function: pythonIdentifier,
  concurrency: intFromEnv(1, 1000).optional(),
  socket: nonEmpty.default(POD_PATHS.socket),
  /** Copy the SDK from here into `sdkDir` (empty: do not copy, e.g. in tests). */
  sdkSource: z.string().default("/opt/trellis/python"),
  sdkDir: z.string().default(POD_PATHS.sdkDir),
  readyFile: z.string().optional(),
  heartbeatIntervalMs: intFromEnv(100, 600_000).optional(),
  workerHeartbeatMs: intFromEnv(50, 600_000).default(5_000),
  workerHeartbeatTimeoutMs: intFromEnv(100, 3_600_000).default(15_000),
  timeoutGraceMs: intFromEnv(0, 3_600_000).default(10_000),
  /** Calls leased while no worker is connected wait this long for it before they are given back. */
  workerReturnMs: intFromEnv(0, 3_600_000).default(60_000),
  drainDeadlineSeconds: intFromEnv(0, 86_400).default(50),
  progressIntervalMs: intFromEnv(0, 60_000).default(250),
  logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
  valuesDir: z.string().optional(),
  spillThresholdBytes: intFromEnv(0, MAX_FRAME_BYTES / 2).default(SPILL_THRESHOLD_BYTES),
});

export type SidecarConfig = Omit<z.infer<typeof schema>, "readyFile" | "valuesDir" | "spillThresholdBytes"> & {
  readyFile: string;
  token: string;
  /** Spilled values (PROTOCOL.md §4); without both, values cross the socket inline. */
  valuesDir?: string;
  spillThresholdBytes?: number;
};

/** Field → variable, so zod's issues name what the operator of the pod has to fix. */
const VARIABLE: Record<string, string> = {
  operatorUrl: SIDECAR_ENV.operatorUrl,
  podNamespace: SIDECAR_ENV.podNamespace,
  podName: SIDECAR_ENV.podName,
  application: SIDECAR_ENV.application,
  function: SIDECAR_ENV.function,
  concurrency: SIDECAR_ENV.concurrency,
  socket: SIDECAR_ENV.socket,
  sdkDir: SIDECAR_ENV.sdkDir,
  ...EXTRA_ENV,
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): SidecarConfig {
  const raw: Record<string, string | undefined> = {};
  for (const [field, variable] of Object.entries(VARIABLE)) {
    const v = env[variable];
    if (v !== undefined && v !== "") raw[field] = v;
  }
  // The SDK source may be set to "" on purpose (skip the copy).
  if (env[EXTRA_ENV.sdkSource] === "") raw.sdkSource = "";
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const field = String(i.path[0] ?? "");
      const variable = VARIABLE[field] ?? field;
      const message = i.code === "invalid_type" && raw[field] === undefined ? "is required" : i.message;
      return `${variable}: ${message}`;
    });
    throw new ConfigError(`invalid sidecar environment: ${lines.join("; ")}`);
  }
  const c = parsed.data;
  return {
    ...c,
    readyFile: c.readyFile ?? join(dirname(c.socket), "sidecar.ready"),
    valuesDir: c.valuesDir ?? join(dirname(c.socket), "values"),
    token: readToken(env),
  };
}

function readToken(env: NodeJS.ProcessEnv): string {
  const file = env[EXTRA_ENV.podTokenFile];
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new ConfigError(`${EXTRA_ENV.podTokenFile}: cannot read ${file}: ${(e as Error).message}`);
    }
    const token = text.trim();
    if (!token) throw new ConfigError(`${EXTRA_ENV.podTokenFile}: ${file} is empty`);
    return token;
  }
  const token = env[SIDECAR_ENV.podToken]?.trim();
  if (!token) throw new ConfigError(`${SIDECAR_ENV.podToken}: is required (or ${EXTRA_ENV.podTokenFile})`);
  return token;
}
