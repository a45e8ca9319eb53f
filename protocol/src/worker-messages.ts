// The worker ↔ sidecar protocol inside a function pod (runtime-image/PROTOCOL.md): every message
// of both directions, with the value forms and call specs they carry. The Python twin is
// runtime-image/python/trellis/protocol/; both check protocol/fixtures/worker-messages.json, so a
// rule changed on one side only fails a test. Receivers ignore unknown fields: objects are not
// strict (zod drops unknown keys), except value forms, which hold exactly one key.
import { z } from "zod";
import { tensorlakeEntrypoint } from "./api/v1alpha1/application.js";
import { objectName, pythonIdentifier } from "./api/v1alpha1/common.js";
import { FAILURE_REASON_NAMES, type FailureReasonName } from "./failures.js";

/** `protocol` of hello/welcome. Optional fields may be added without a bump; anything else bumps it. */
export const WORKER_PROTOCOL_VERSION = 1;
/** Largest frame body (UTF-8 JSON) in either direction; a larger one is a protocol error. */
export const MAX_FRAME_BYTES = 64 * 1024 * 1024;
/**
 * Deepest nesting of objects and lists in a message: a deeper one is refused before it is checked
 * (the schema checks recurse, and a value nested 100000 deep would overflow the receiver's stack).
 */
export const MAX_MESSAGE_DEPTH = 256;
/** Most parameters of one function in hello's table (the operator's function table holds as many). */
export const MAX_FUNCTION_PARAMETERS = 256;

/**
 * The reasons a worker raises itself in `failure` (§8). A `failure` may also relay a failed child's
 * reason (any of the shared table's, e.g. input_failed), so the schema accepts every one.
 */
export const WORKER_FAILURE_REASONS = [
  "function_error",
  "request_error",
  "function_timeout",
  "unknown_function",
  "worker_shutdown",
  "internal",
] as const satisfies readonly FailureReasonName[];

const callId = objectName;
const attempt = z.number().int().min(1);
const count = z.number().int().min(0);
const seconds = z.number().min(0);
const positiveSeconds = z.number().positive();

// -- value forms (§4) ---------------------------------------------------------------------------

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A value in a file of the run volume's values directory (§4), between a pair that agreed on it. */
export type SpillRef = { path: string; size: number };
/** A resolved value: what the worker sends and receives. */
export type ValueForm =
  | { json: JsonValue }
  | { pickle: string }
  | { list: ValueForm[] }
  | { raw: { contentType: string; data: string } }
  | { spill: SpillRef };
/** A child call's input: a value, or the output of another call. */
export type InputForm = ValueForm | { call: string };

const VALUE_RULE = "must be a value form ({json}|{pickle}|{list}|{raw})";
const INPUT_RULE = "must be a value form ({json}|{pickle}|{list}|{raw}) or a {call} reference";

const PICKLE_RULE = "must be standard base64 with padding";
const pickle = z
  .string()
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: PICKLE_RULE })
  .refine((s) => s.length % 4 === 0, { message: PICKLE_RULE })
  .meta({ description: "A tagged Python pickle, standard base64 with padding." });

/** Bytes with a MIME type: a non-JSON request input, or an application's File/HttpBody output. */
const raw = z.strictObject({
  contentType: z.string().min(1).max(255),
  data: pickle.meta({ description: "The bytes, standard base64 with padding." }),
});

/**
 * A spilled value (§4): the file holds the value's blob document (UTF-8 JSON {value}, {pickle},
 * {raw} with data last, or {list}); only sent when both sides announced it in the handshake.
 */
const spill = z.strictObject({ path: z.string().min(1).max(4096), size: z.number().int().min(0) });

/** Default size over which a value travels as a spill file (welcome.spill.threshold). */
export const SPILL_THRESHOLD_BYTES = 8 * 1024 * 1024;

const exactlyOne = (keys: readonly string[]) => (v: object) => keys.filter((k) => k in v).length === 1;

// One strict object with optional keys, not a union, so an error names the nested field (e.g.
// args[0].list[1]); the refine makes the cast to the exact union type true.
export const valueForm: z.ZodType<ValueForm> = z.lazy(
  () =>
    z
      .strictObject({
        json: z.json().optional(),
        pickle: pickle.optional(),
        list: z.array(valueForm).optional(),
        raw: raw.optional(),
        spill: spill.optional(),
      })
      .refine(exactlyOne(["json", "pickle", "list", "raw", "spill"]), { message: VALUE_RULE }) as z.ZodType<ValueForm>,
);

export const inputForm: z.ZodType<InputForm> = z.lazy(
  () =>
    z
      .strictObject({
        json: z.json().optional(),
        pickle: pickle.optional(),
        list: z.array(valueForm).optional(),
        raw: raw.optional(),
        spill: spill.optional(),
        call: callId.optional(),
      })
      .refine(exactlyOne(["json", "pickle", "list", "raw", "spill", "call"]), {
        message: INPUT_RULE,
      }) as z.ZodType<InputForm>,
);

// -- call specs (§6) ----------------------------------------------------------------------------

const items = z.union([z.array(inputForm), z.object({ call: callId })]);
const specBase = { id: callId, function: pythonIdentifier, delay: seconds.optional() };

export const callSpec = z.discriminatedUnion("kind", [
  z.object({
    ...specBase,
    kind: z.literal("call"),
    args: z.array(inputForm),
    kwargs: z.record(z.string(), inputForm),
  }),
  z.object({ ...specBase, kind: z.literal("map"), items }),
  z.object({ ...specBase, kind: z.literal("reduce"), items, initial: inputForm.optional() }),
]);
export type CallSpec = z.infer<typeof callSpec>;

// -- errors (§8) --------------------------------------------------------------------------------

/** An Error as `resolved` carries it: the reason may be the operator's (e.g. cancelled). */
export const workerError = z.object({
  type: z.string().min(1),
  message: z.string(),
  module: z.string().optional(),
  traceback: z.string().optional(),
  function: z.string().nullable().optional(),
  call: z.string().optional(),
  request_error: z.boolean().optional(),
  reason: z.string().optional(),
  retryable: z.boolean().optional(),
  cause: z.string().optional(),
});
export type WorkerError = z.infer<typeof workerError>;

/** An Error as the worker reports it in `failure`: its own reason, or a failed child's it relays. */
export const workerFailureError = workerError.extend({ reason: z.enum(FAILURE_REASON_NAMES) });

// -- worker → sidecar (§3, §5) ------------------------------------------------------------------

const workerRetries = z.object({
  max_retries: count,
  initial_delay: seconds,
  max_delay: seconds,
  delay_multiplier: z.number().min(1),
});

/** One entry of hello's function table; only name, async and application are required. */
export const functionInfo = z.object({
  name: pythonIdentifier,
  async: z.boolean(),
  application: z.boolean(),
  description: z.string().nullable().optional(),
  parameters: z.array(z.string().max(256)).max(MAX_FUNCTION_PARAMETERS).optional(),
  timeout: positiveSeconds.optional(),
  retries: workerRetries.nullable().optional(),
  application_retries: workerRetries.nullable().optional(),
  tags: z.record(z.string(), z.string()).optional(),
  cpu: z.number().positive().nullable().optional(),
  memory: z.number().positive().nullable().optional(),
  ephemeral_disk: z.number().positive().nullable().optional(),
  gpu: z
    .union([z.string(), z.array(z.string())])
    .nullable()
    .optional(),
  secrets: z.array(z.string()).optional(),
  image: z.string().nullable().optional(),
  min_containers: count.nullable().optional(),
  max_containers: count.nullable().optional(),
  warm_containers: count.nullable().optional(),
  max_concurrency: z.number().int().min(1).optional(),
  class_name: z.string().nullable().optional(),
  init_timeout: positiveSeconds.nullable().optional(),
  tensorlake: tensorlakeEntrypoint.optional(),
});
export type FunctionInfo = z.infer<typeof functionInfo>;

const ofAttempt = { call: callId, attempt };

export const helloMessage = z.object({
  type: z.literal("hello"),
  protocol: z.number().int().min(1),
  sdk: z.string(),
  python: z.string(),
  pid: count,
  module: z.string(),
  concurrency: z.number().int().min(1),
  functions: z.array(functionInfo),
  spill: z.boolean().optional().meta({ description: "The worker reads and writes spilled values (§4)." }),
});
export const fatalMessage = z.object({
  type: z.literal("fatal"),
  protocol: z.number().int().min(1),
  error: z.object({
    type: z.string().min(1),
    message: z.string(),
    module: z.string().optional(),
    traceback: z.string().optional(),
  }),
});
export const callsMessage = z.object({ type: z.literal("calls"), ...ofAttempt, calls: z.array(callSpec) });
export const watchMessage = z.object({ type: z.literal("watch"), ...ofAttempt, ids: z.array(callId) });
export const resultMessage = z.object({ type: z.literal("result"), ...ofAttempt, output: valueForm });
export const tailMessage = z.object({ type: z.literal("tail"), ...ofAttempt, target: callId });
export const failureMessage = z.object({ type: z.literal("failure"), ...ofAttempt, error: workerFailureError });
export const cancelledMessage = z.object({ type: z.literal("cancelled"), ...ofAttempt });
export const progressMessage = z.object({
  type: z.literal("progress"),
  ...ofAttempt,
  current: seconds,
  total: seconds,
  message: z.string().nullable(),
  attributes: z.record(z.string(), z.string()).nullable(),
});
export const metricMessage = z
  .object({
    type: z.literal("metric"),
    ...ofAttempt,
    kind: z.enum(["counter", "timer"]),
    name: z.string().min(1),
    value: seconds,
  })
  .refine((m) => m.kind !== "counter" || Number.isInteger(m.value), {
    path: ["value"],
    message: "must be an integer >= 0 for a counter",
  });
export const stateGetMessage = z.object({
  type: z.literal("state_get"),
  rid: z.string().min(1),
  call: callId,
  request: callId,
  key: z.string(),
});
export const stateSetMessage = stateGetMessage.extend({ type: z.literal("state_set"), value: valueForm });
export const heartbeatAckMessage = z.object({
  type: z.literal("heartbeat_ack"),
  seq: count,
  running: z.array(z.object({ ...ofAttempt, function: pythonIdentifier, seconds })),
  queued: count,
  capacity: z.number().int().min(1),
  abandoned: count,
  loop_stalled: seconds,
});
export const byeMessage = z.object({ type: z.literal("bye"), unfinished: z.array(callId) });

export const workerToSidecar = z.discriminatedUnion("type", [
  helloMessage,
  fatalMessage,
  callsMessage,
  watchMessage,
  resultMessage,
  tailMessage,
  failureMessage,
  cancelledMessage,
  progressMessage,
  metricMessage,
  stateGetMessage,
  stateSetMessage,
  heartbeatAckMessage,
  byeMessage,
]);
export type WorkerToSidecar = z.infer<typeof workerToSidecar>;

// -- sidecar → worker (§3, §9) ------------------------------------------------------------------

export const welcomeMessage = z.object({
  type: z.literal("welcome"),
  protocol: z.number().int().min(1),
  spill: z
    .object({ dir: z.string().min(1), threshold: z.number().int().min(1) })
    .optional()
    .meta({ description: "Answer to hello.spill: values over `threshold` bytes travel as files in `dir` (§4)." }),
});
export const assignMessage = z.object({
  type: z.literal("assign"),
  ...ofAttempt,
  request: callId,
  function: pythonIdentifier,
  args: z.array(valueForm),
  kwargs: z.record(z.string(), valueForm),
  headers: z.record(z.string(), z.string()).optional(),
  timeout: positiveSeconds
    .optional()
    .meta({ description: "Seconds this attempt may run; the worker falls back to the decorator's timeout." }),
});
export type AssignMessage = z.infer<typeof assignMessage>;
export const resolvedMessage = z
  .object({ type: z.literal("resolved"), id: callId, output: valueForm.optional(), error: workerError.optional() })
  .refine((m) => "output" in m !== "error" in m, {
    path: ["output"],
    message: "exactly one of output and error must be set",
  });
export const replyMessage = z.object({
  type: z.literal("reply"),
  rid: z.string().min(1),
  ok: z.boolean(),
  value: valueForm.nullable().optional(),
  error: z.string().optional(),
});
export const heartbeatMessage = z.object({ type: z.literal("heartbeat"), seq: count });
export const cancelMessage = z.object({ type: z.literal("cancel"), call: callId });
export const shutdownMessage = z.object({
  type: z.literal("shutdown"),
  drain: z.boolean().optional().meta({ description: "Default true." }),
  deadline: seconds.optional().meta({ description: "Seconds; default 30." }),
});

export const sidecarToWorker = z.discriminatedUnion("type", [
  welcomeMessage,
  assignMessage,
  resolvedMessage,
  replyMessage,
  heartbeatMessage,
  cancelMessage,
  shutdownMessage,
]);
export type SidecarToWorker = z.infer<typeof sidecarToWorker>;
