// The operator <-> sidecar wire protocol (HTTP + JSON). Every body is validated with these
// schemas on arrival. Bump RUNTIME_API_VERSION on breaking change.
import { z } from "zod";
import { tensorlakeEntrypoint } from "./api/v1alpha1/application.js";
import { objectName, pythonIdentifier, valueRef } from "./api/v1alpha1/common.js";
import { FAILURE_KINDS } from "./failures.js";

export const RUNTIME_API_VERSION = "v1";
export const RUNTIME_API_PREFIX = `/runtime/${RUNTIME_API_VERSION}`;
/** Headers every sidecar request carries. */
export const POD_HEADER = "x-trellis-pod"; // "<namespace>/<pod name>"
// plus `authorization: Bearer <per-pod token>` (HMAC issued by the operator, see credentials).

/** A concrete value: what a running call receives or produces (never a call reference). */
export const concreteValue = valueRef.refine((v) => v.call === undefined, {
  message: "call references are not allowed here",
});
export type ConcreteValue = z.infer<typeof concreteValue>;

export const discoveredFunctionMsg = z.object({
  name: pythonIdentifier,
  /** Parameter names in order (an application's: what its callers may pass). */
  parameters: z.array(z.string().max(256)).max(256).optional(),
  /** An application's Tensorlake entrypoint manifest fields, for Tensorlake's client. */
  tensorlake: tensorlakeEntrypoint.optional(),
  async: z.boolean(),
  application: z.boolean().default(false),
  timeoutSeconds: z.number().positive().optional(),
  maxConcurrency: z.number().int().positive().optional(),
  minContainers: z.number().int().min(0).optional(),
  maxContainers: z.number().int().min(1).optional(),
  retries: z
    .object({
      maxRetries: z.number().int().min(0),
      initialDelaySeconds: z.number().min(0),
      maxDelaySeconds: z.number().min(0),
      delayMultiplier: z.number().min(1),
    })
    .optional(),
});

/** POST /register — a sidecar whose worker has loaded the code. */
export const registerRequest = z.object({
  function: pythonIdentifier,
  capacity: z.number().int().min(1).max(1000),
  functions: z.array(discoveredFunctionMsg).max(1000),
  sidecarVersion: z.string().max(64),
  workerVersion: z.string().max(64).optional(),
});
export const registerResponse = z.object({
  heartbeatIntervalMs: z.number().int().positive(),
  leaseWaitMs: z.number().int().positive(),
  inlineValueLimitBytes: z.number().int().positive(),
  /** The blob store hands out presigned URLs (POST /blob-urls): blobs go between pod and store directly. */
  directBlobs: z.boolean().default(false),
});

/** One call given to a pod. Inputs are resolved: every {call} became the callee's output. */
export const assignment = z.object({
  call: objectName,
  attempt: z.number().int().min(1),
  function: pythonIdentifier,
  request: objectName,
  args: z.array(concreteValue),
  kwargs: z.record(z.string(), concreteValue),
  headers: z.record(z.string(), z.string()).default({}),
  timeoutSeconds: z.number().positive(),
  /** Child names under this call continue from here (a retried parent re-attaches to them). */
  isRoot: z.boolean(),
});
export type Assignment = z.infer<typeof assignment>;

/** POST /lease — long-poll for up to `capacity` calls. */
export const leaseRequest = z.object({
  capacity: z.number().int().min(0).max(1000),
  waitMs: z.number().int().min(0).max(60000),
});
/** Which operator process answered a lease (random per process): seqs of another one mean nothing. */
export const leaseEpoch = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, "must be 1-64 letters, digits or '-'");
/** Per pod: grows with every lease answer that carries assignments; an empty answer repeats the last. */
export const leaseSeq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/**
 * The lease answer a sidecar took last. A heartbeat names it so that the operator knows which
 * assignments the heartbeat's `calls` can already hold (a heartbeat built before an answer
 * arrived must not make its calls look lost).
 */
export const leaseStamp = z.object({ epoch: leaseEpoch, seq: leaseSeq });
export type LeaseStamp = z.infer<typeof leaseStamp>;
/** `epoch` and `seq` are optional: an older operator sends neither. */
export const leaseResponse = z.object({
  assignments: z.array(assignment),
  epoch: leaseEpoch.optional(),
  seq: leaseSeq.optional(),
});

/** POST /heartbeat — the calls this pod is running; the answer lists calls to abort. */
export const heartbeatRequest = z.object({
  calls: z.array(z.object({ call: objectName, attempt: z.number().int().min(1) })).max(1000),
  draining: z.boolean().default(false),
  /**
   * The last lease answer whose assignments are in `calls` (or finished); null: none taken yet.
   * Absent from older sidecars (the operator then judges missing calls by their age).
   */
  lease: leaseStamp.nullable().optional(),
});
export const heartbeatResponse = z.object({ cancel: z.array(objectName) });

/** POST /calls/:name/result */
export const resultRequest = z.object({ attempt: z.number().int().min(1), output: concreteValue });

/** POST /calls/:name/failure */
export const failureRequest = z.object({
  attempt: z.number().int().min(1),
  error: z.object({
    type: z.string().max(1024),
    message: z.string().max(32768),
    traceback: z.string().max(65536).optional(),
  }),
  /** user: the function raised; request_error: RequestError (never retried); timeout: the attempt timed out;
   *  infrastructure: the worker crashed or the pod is going away (re-run without spending user retries). */
  kind: z.enum(FAILURE_KINDS),
  /** false: do not retry whatever the policy says (e.g. the function is unknown to the worker). */
  retryable: z.boolean().default(true),
});

/** POST /calls/:name/tail — the call returned a future: its output comes from `tailCall`. */
export const tailRequest = z.object({ attempt: z.number().int().min(1), tailCall: objectName });

/** A child call as the worker describes it; its name is derived from the parent and `sequence`. */
export const childCall = z.object({
  name: objectName,
  sequence: z.number().int().min(0),
  function: pythonIdentifier,
  delaySeconds: z.number().min(0).optional(),
  args: z.array(valueRef).default([]),
  kwargs: z.record(z.string(), valueRef).default({}),
  map: z.object({ items: z.array(valueRef).optional(), itemsFrom: objectName.optional() }).optional(),
  reduce: z
    .object({ items: z.array(valueRef).optional(), itemsFrom: objectName.optional(), initial: valueRef.optional() })
    .optional(),
});
export type ChildCall = z.infer<typeof childCall>;

/** POST /calls/:name/children — create children (a whole map is one request). Idempotent by name. */
export const childrenRequest = z.object({
  attempt: z.number().int().min(1),
  calls: z.array(childCall).min(1).max(10000),
});

export const outcome = z.object({
  call: objectName,
  phase: z.enum(["Succeeded", "Failed", "Cancelled"]),
  output: concreteValue.optional(),
  error: z
    .object({
      type: z.string(),
      message: z.string(),
      traceback: z.string().optional(),
      reason: z.string().optional(),
      cause: z.string().optional(),
    })
    .optional(),
});
export type Outcome = z.infer<typeof outcome>;
export const childrenResponse = z.object({
  /** Children that already existed and have finished (a re-run parent re-attaches to them). */
  finished: z.array(outcome),
});

/** POST /wait — long-poll until `mode` is met or waitMs passes; returns every finished one. */
export const waitRequest = z.object({
  calls: z.array(objectName).min(1).max(10000),
  mode: z.enum(["any", "all"]),
  waitMs: z.number().int().min(0).max(60000),
});
export const waitResponse = z.object({ outcomes: z.array(outcome) });

/** POST /calls/:name/progress */
export const progressRequest = z.object({
  current: z.number().finite(),
  total: z.number().finite(),
  message: z.string().max(1024).optional(),
});

/** GET/PUT /requests/:request/state/:key — request-scoped state shared by its functions. */
export const stateValue = z.object({ value: concreteValue.optional() });

/** PUT /blobs?call=<name> (raw bytes, content-type application/octet-stream) → { blob } ; GET /blobs/<ref> → bytes.
 *  `call` (a call assigned to the pod) files the blob under its request, so it is deleted with it. */
export const blobPutResponse = z.object({ blob: z.string() });

/**
 * POST /blob-urls — presigned URLs so the pod moves blob bytes to and from the store itself: `put`
 * files a new blob of `size` bytes under `call`'s request (a call assigned to the pod; the URL
 * accepts exactly that many bytes); `get` reads blobs of requests of calls assigned to the pod.
 * URLs expire within minutes. An operator whose store cannot presign answers 404
 * direct_blobs_unavailable (register's directBlobs says so up front).
 */
export const blobUrlsRequest = z
  .object({
    put: z.object({ call: objectName, size: z.number().int().min(0) }).optional(),
    get: z.array(z.string().min(1).max(512)).max(64).optional(),
  })
  .refine((b) => b.put !== undefined || (b.get?.length ?? 0) > 0, { message: "must ask for put or get" });
export const blobUrl = z.object({ blob: z.string(), url: z.string() });
export const blobUrlsResponse = z.object({
  put: blobUrl.optional(),
  get: z.array(blobUrl).optional(),
  expiresInSeconds: z.number().int().positive(),
});

/**
 * The bytes of every blob a value references ({blob: ref}): UTF-8 JSON of the value in one of the
 * inline forms ({value}, {pickle} or {list}). The operator writes one for an output over the
 * inline limit (a map's assembled {list} included); a sidecar that uploads a large value should
 * write the same document.
 */
export const blobDocument = z
  .union([
    z.object({ value: z.unknown() }).strict(),
    z.object({ pickle: z.string() }).strict(),
    z.object({ list: z.array(z.record(z.string(), z.unknown())) }).strict(),
    z.object({ raw: z.object({ contentType: z.string().min(1), data: z.string() }).strict() }).strict(),
  ])
  // No length limits here: a blob is large by design (the inline limits are for etcd).
  .refine((d) => Object.keys(d).length === 1 && Object.values(d)[0] !== undefined, {
    message: "a blob holds exactly one of value, pickle, list or raw",
  });
export type BlobDocument = z.infer<typeof blobDocument>;

/** Keys of request state: GET/PUT /requests/:request/state/:key. */
export const STATE_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/**
 * POST /code-load-failure — the worker could not import the user's code (it sent `fatal` instead
 * of `hello`): the Application shows CodeLoaded=False, reason CodeLoadFailed, with this error. The
 * sidecar keeps running and reports again after each worker restart. Answer: `{}`.
 */
export const codeLoadFailureRequest = z.object({
  function: pythonIdentifier,
  error: z.object({
    type: z.string().max(1024),
    message: z.string().max(32768),
    traceback: z.string().max(65536).optional(),
    /** The module the worker was asked to import. */
    module: z.string().max(1024).optional(),
  }),
  sidecarVersion: z.string().max(64),
});

/** The error codes of the runtime API and their HTTP statuses. */
export const ERROR_STATUS = {
  invalid_body: 400,
  unauthenticated: 401,
  bad_credentials: 401,
  pod_unknown: 403,
  not_assigned: 403,
  not_in_request: 403,
  forbidden_blob: 403,
  call_not_found: 404,
  blob_not_found: 404,
  direct_blobs_unavailable: 404,
  route_not_found: 404,
  stale_attempt: 409,
  name_conflict: 409,
  child_name_mismatch: 400,
  unknown_input: 400,
  unknown_tail_call: 400,
  unknown_function: 400,
  value_too_large: 413,
  call_too_large: 413,
  blob_too_large: 413,
  internal: 500,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

/** Error body of every 4xx/5xx: a stable code and a message naming the field and the rule. */
export const errorBody = z.object({ code: z.string(), message: z.string() });
