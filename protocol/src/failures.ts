// One table of failure reasons for every part: the worker's Error.reason (PROTOCOL.md §8), the
// runtime API's failure `kind`, and the FunctionCall's status.error.reason are read off it.

/** How the operator treats a failed attempt. */
export type RetryRule =
  /** Retried with backoff while the call's retry policy allows. */
  | "policy"
  /** Re-run without spending the user's retries, up to the infrastructure bound. */
  | "infrastructure"
  /** Never retried. */
  | "never";

/** The runtime API's failure kind (POST /calls/:name/failure). */
export const FAILURE_KINDS = ["user", "request_error", "timeout", "infrastructure"] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

export interface FailureReason {
  /** The kind a sidecar reports for a worker failure of this reason; null if no worker sends it. */
  kind: FailureKind | null;
  retry: RetryRule;
  /** The reason written to status.error.reason when the call fails with it. */
  callReason: CallFailureReason;
  description: string;
}

/** status.error.reason of a FunctionCall (the CRD's enum). */
export const CALL_FAILURE_REASONS = [
  "function_error",
  "function_timeout",
  "request_error",
  "input_failed",
  "infrastructure",
  "cancelled",
  "invalid_call",
] as const;
export type CallFailureReason = (typeof CALL_FAILURE_REASONS)[number];

export const FAILURE_REASONS = {
  function_error: {
    kind: "user",
    retry: "policy",
    callReason: "function_error",
    description: "the function raised an exception",
  },
  function_timeout: {
    kind: "timeout",
    retry: "policy",
    callReason: "function_timeout",
    description: "an attempt ran past the function's timeout",
  },
  request_error: {
    kind: "request_error",
    retry: "never",
    callReason: "request_error",
    description: "the function raised RequestError: the whole request fails with its message",
  },
  unknown_function: {
    kind: "user",
    retry: "never",
    callReason: "function_error",
    description: "the function is not in the worker's function table",
  },
  worker_shutdown: {
    kind: "infrastructure",
    retry: "infrastructure",
    callReason: "infrastructure",
    description: "the attempt never started: its worker was shutting down",
  },
  internal: {
    kind: "user",
    retry: "policy",
    callReason: "function_error",
    description: "the runtime failed around the function (e.g. an output it could not serialise)",
  },
  infrastructure: {
    kind: "infrastructure",
    retry: "infrastructure",
    callReason: "infrastructure",
    description: "the pod, container or heartbeat was lost during the attempt",
  },
  input_failed: {
    kind: null,
    retry: "never",
    callReason: "input_failed",
    description: "an input call failed, so this call never ran",
  },
  cancelled: {
    kind: null,
    retry: "never",
    callReason: "cancelled",
    description: "the request was deleted or failed, or a map/reduce around the call failed",
  },
  invalid_call: {
    kind: null,
    retry: "never",
    callReason: "invalid_call",
    description: "the call cannot run as specified (e.g. its tail call does not exist)",
  },
  object_refused: {
    kind: null,
    retry: "never",
    callReason: "invalid_call",
    description:
      "the API server refused a write the call needs (a child FunctionCall, its status) for a reason that does not pass with time (400, 403 from admission, 404 on create, 422)",
  },
} as const satisfies Record<string, FailureReason>;
export type FailureReasonName = keyof typeof FAILURE_REASONS;
/**
 * Every reason of the table, as an enum's values. A worker's `failure` may carry any of them: a
 * function that does not catch a failed child's error fails with the child's reason.
 */
export const FAILURE_REASON_NAMES = Object.keys(FAILURE_REASONS) as [FailureReasonName, ...FailureReasonName[]];

/** The entry for a worker's reason; an unknown or missing one counts as function_error. */
export function failureReason(reason: string | undefined): FailureReason & { name: FailureReasonName } {
  const name = (reason !== undefined && reason in FAILURE_REASONS ? reason : "function_error") as FailureReasonName;
  return { name, ...FAILURE_REASONS[name] };
}

/** The call reason the operator writes for a reported failure kind. */
export function callReasonOfKind(kind: FailureKind): CallFailureReason {
  if (kind === "timeout") return "function_timeout";
  if (kind === "user") return "function_error";
  return kind;
}
