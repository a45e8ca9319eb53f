// The operator's configuration: environment variables parsed once, with zod, in main.ts.
import { hostname } from "node:os";
import { z } from "zod";
import { NODE_LOSS_TOLERATION_MAX } from "../../protocol/index.js";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"], { message: "must be true or false" })
  .transform((v) => v === "true" || v === "1" || v === "yes");
const port = z.coerce.number().int().min(0).max(65535);
const list = z.string().transform((v) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);

/** Env var → field. Every error names the variable. */
const env = z.object({
  KUBECONFIG: z.string().optional(),
  TRELLIS_NAMESPACE: z.string().min(1).default("trellis-system"),
  TRELLIS_WATCH_NAMESPACES: list.default([]),
  TRELLIS_IDENTITY: z.string().min(1).default(hostname()),
  TRELLIS_POD_NAME: z.string().min(1).optional(),
  TRELLIS_LEADER_ELECTION: bool.default(true),
  TRELLIS_LEASE_NAME: z.string().min(1).default("trellis-operator"),
  TRELLIS_KEY_SECRET: z.string().min(1).default("trellis-operator-key"),
  TRELLIS_RUNTIME_API_HOST: z.string().default("0.0.0.0"),
  TRELLIS_RUNTIME_API_PORT: port.default(8081),
  TRELLIS_HTTP_HOST: z.string().default("0.0.0.0"),
  TRELLIS_HTTP_PORT: port.default(8080),
  TRELLIS_HTTP_AUTH: z.enum(["kubernetes", "none"], { message: "must be kubernetes or none" }).default("kubernetes"),
  TRELLIS_HTTP_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(10 * 1024 * 1024),
  // Largest File (a raw body or a multipart file part), streamed to the blob store: 5 GiB.
  TRELLIS_HTTP_MAX_FILE_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(5 * 1024 * 1024 * 1024),
  // Tokens must be issued for one of these audiences (TokenReview spec.audiences); empty: the API server's.
  TRELLIS_HTTP_TOKEN_AUDIENCES: list.default(["trellis"]),
  // Request headers forwarded into spec.headers: names and `prefix*`; empty: the built-in list.
  TRELLIS_HTTP_FORWARD_HEADERS: list.default([]),
  TRELLIS_HTTP_SSE_MAX_PER_CLIENT: z.coerce.number().int().min(1).default(16),
  TRELLIS_HTTP_SSE_MAX_DURATION_SECONDS: z.coerce.number().int().min(1).default(3600),
  TRELLIS_METRICS_HOST: z.string().default("0.0.0.0"),
  TRELLIS_METRICS_PORT: port.default(9090),
  TRELLIS_OPERATOR_URL: z.url({ message: "must be a URL the function pods can reach" }).optional(),
  TRELLIS_RUNTIME_IMAGE: z.string().min(1).default("localhost/trellis-runtime:dev"),
  TRELLIS_RUNTIME_IMAGE_PULL_POLICY: z.enum(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
  TRELLIS_HOST_NETWORK: bool.default(false),
  TRELLIS_IDLE_TIMEOUT_SECONDS: z.coerce.number().int().min(0).default(300),
  // Function pods' tolerationSeconds of a not-ready or unreachable node (Kubernetes' default is 300).
  TRELLIS_NODE_LOSS_TOLERATION_SECONDS: z.coerce.number().int().min(0).max(NODE_LOSS_TOLERATION_MAX).default(30),
  TRELLIS_BLOB_BACKEND: z.enum(["filesystem", "s3"], { message: "must be filesystem or s3" }).default("filesystem"),
  TRELLIS_BLOB_DIR: z.string().min(1).default("/var/lib/trellis/blobs"),
  TRELLIS_S3_BUCKET: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, { message: "must be a bucket name (3-63 of a-z, 0-9, '.', '-')" })
    .optional(),
  TRELLIS_S3_PREFIX: z
    .string()
    .regex(/^([A-Za-z0-9._-]+\/)*$/, { message: "must be empty or '/'-separated segments ending in '/'" })
    .default(""),
  TRELLIS_S3_ENDPOINT: z.url({ message: "must be an http(s) URL" }).optional(),
  TRELLIS_S3_REGION: z.string().min(1).default("us-east-1"),
  TRELLIS_S3_FORCE_PATH_STYLE: bool.default(false),
  // Requests of applications that set no ttlSecondsAfterFinished are deleted this long after they
  // finish (with their blobs); 0 keeps them until deleted.
  TRELLIS_REQUEST_TTL_SECONDS: z.coerce.number().int().min(0).max(31536000).default(86400),
  TRELLIS_BLOB_SWEEP_INTERVAL_SECONDS: z.coerce.number().int().min(1).default(300),
  // A blob prefix whose request is gone is removed only once it has been seen orphaned this long
  // (an upload lands before its request is created).
  TRELLIS_BLOB_SWEEP_GRACE_SECONDS: z.coerce.number().int().min(0).default(600),
  TRELLIS_BLOB_SWEEP_MAX_PER_PASS: z.coerce.number().int().min(1).max(100000).default(1000),
  TRELLIS_CALL_WORKERS: z.coerce.number().int().min(1).max(256).default(16),
  TRELLIS_APP_WORKERS: z.coerce.number().int().min(1).max(64).default(2),
  TRELLIS_HEARTBEAT_TIMEOUT_MS: z.coerce.number().int().min(1).optional(),
  TRELLIS_LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

export type OperatorConfig = ReturnType<typeof parseConfig>;

export function parseConfig(source: NodeJS.ProcessEnv = process.env) {
  const r = env
    .superRefine((e, ctx) => {
      if (e.TRELLIS_BLOB_BACKEND === "s3" && !e.TRELLIS_S3_BUCKET)
        ctx.addIssue({ code: "custom", path: ["TRELLIS_S3_BUCKET"], message: "required when TRELLIS_BLOB_BACKEND=s3" });
    })
    .safeParse(source);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${String(i.path[0])}: ${i.message}`);
    throw new Error(`invalid configuration:\n${lines.join("\n")}`);
  }
  const e = r.data;
  return {
    kubeconfig: e.KUBECONFIG,
    namespace: e.TRELLIS_NAMESPACE,
    watchNamespaces: e.TRELLIS_WATCH_NAMESPACES,
    identity: e.TRELLIS_IDENTITY,
    podName: e.TRELLIS_POD_NAME,
    leaderElection: e.TRELLIS_LEADER_ELECTION,
    leaseName: e.TRELLIS_LEASE_NAME,
    keySecret: e.TRELLIS_KEY_SECRET,
    runtimeApi: { host: e.TRELLIS_RUNTIME_API_HOST, port: e.TRELLIS_RUNTIME_API_PORT },
    http: {
      host: e.TRELLIS_HTTP_HOST,
      port: e.TRELLIS_HTTP_PORT,
      // "none" is for local development only: anyone who reaches the port may invoke.
      auth: e.TRELLIS_HTTP_AUTH,
      bodyLimit: e.TRELLIS_HTTP_BODY_LIMIT_BYTES,
      maxFileBytes: e.TRELLIS_HTTP_MAX_FILE_BYTES,
      tokenAudiences: e.TRELLIS_HTTP_TOKEN_AUDIENCES,
      forwardHeaders: e.TRELLIS_HTTP_FORWARD_HEADERS.length ? e.TRELLIS_HTTP_FORWARD_HEADERS : undefined,
      sse: {
        maxPerClient: e.TRELLIS_HTTP_SSE_MAX_PER_CLIENT,
        maxDurationMs: e.TRELLIS_HTTP_SSE_MAX_DURATION_SECONDS * 1000,
      },
    },
    // /metrics only, on its own port: the public HTTP port does not serve it.
    metrics: { host: e.TRELLIS_METRICS_HOST, port: e.TRELLIS_METRICS_PORT },
    // Function pods reach the runtime API through the Service unless told otherwise.
    operatorUrl:
      e.TRELLIS_OPERATOR_URL ?? `http://trellis-operator.${e.TRELLIS_NAMESPACE}.svc:${e.TRELLIS_RUNTIME_API_PORT}`,
    runtimeImage: e.TRELLIS_RUNTIME_IMAGE,
    runtimeImagePullPolicy: e.TRELLIS_RUNTIME_IMAGE_PULL_POLICY,
    hostNetwork: e.TRELLIS_HOST_NETWORK,
    idleTimeoutSeconds: e.TRELLIS_IDLE_TIMEOUT_SECONDS,
    nodeLossTolerationSeconds: e.TRELLIS_NODE_LOSS_TOLERATION_SECONDS,
    blobs:
      e.TRELLIS_BLOB_BACKEND === "s3"
        ? {
            backend: "s3" as const,
            bucket: e.TRELLIS_S3_BUCKET ?? "",
            prefix: e.TRELLIS_S3_PREFIX,
            endpoint: e.TRELLIS_S3_ENDPOINT,
            region: e.TRELLIS_S3_REGION,
            forcePathStyle: e.TRELLIS_S3_FORCE_PATH_STYLE,
          }
        : { backend: "filesystem" as const, dir: e.TRELLIS_BLOB_DIR },
    requestTtlSeconds: e.TRELLIS_REQUEST_TTL_SECONDS || undefined,
    blobSweep: {
      intervalMs: e.TRELLIS_BLOB_SWEEP_INTERVAL_SECONDS * 1000,
      graceMs: e.TRELLIS_BLOB_SWEEP_GRACE_SECONDS * 1000,
      maxPerPass: e.TRELLIS_BLOB_SWEEP_MAX_PER_PASS,
    },
    callWorkers: e.TRELLIS_CALL_WORKERS,
    appWorkers: e.TRELLIS_APP_WORKERS,
    heartbeatTimeoutMs: e.TRELLIS_HEARTBEAT_TIMEOUT_MS,
    logLevel: e.TRELLIS_LOG_LEVEL,
  };
}
