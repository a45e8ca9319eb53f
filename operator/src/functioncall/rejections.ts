// Refusals of what a pod asks, as values: the runtime API's error code (protocol ErrorCode) and
// a message naming the field and the rule.
import type { ErrorCode } from "../../../protocol/index.js";
import type { Rejection } from "../runtime-api/index.js";

export type { Rejection };

export const reject = (code: ErrorCode, message: string): Rejection => ({ rejected: true, code, message });

export const rejections = {
  callNotFound: (name: string) => reject("call_not_found", `call ${name}: no FunctionCall with this name`),
  notAssigned: (name: string, pod: string) =>
    reject("not_assigned", `call ${name}: not assigned to pod ${pod}; a pod may act only on calls assigned to it`),
  staleAttempt: (name: string, attempt: number, current: number, phase: string) =>
    reject(
      "stale_attempt",
      `call ${name}: attempt ${attempt} is not the running one (current attempt ${current}, phase ${phase}); the report is ignored`,
    ),
  notInRequest: (what: string, request: string, pod: string) =>
    reject("not_in_request", `${what}: pod ${pod} runs no call of request ${request}`),
  /** A value that names a blob of another namespace. */
  foreignBlob: (field: string, namespace: string, blob: string) =>
    reject("invalid_body", `${field}.blob: must be a blob of namespace ${namespace} (got ${blob})`),
};
