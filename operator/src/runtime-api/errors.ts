// The runtime API's error catalog: a stable code, the HTTP status, and a message naming the field
// and the rule. Bodies are `errorBody` ({code, message}) from messages.ts.
import type { z } from "zod";
import { ERROR_STATUS, type ErrorCode } from "../../../protocol/index.js";

export { ERROR_STATUS, type ErrorCode };

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.status = ERROR_STATUS[code];
  }
}

/** The first zod issue as "<field path>: <rule>", prefixed with `where` (e.g. "body"). */
export function fromZod(err: z.ZodError, where: string): ApiError {
  const issue = err.issues[0];
  if (!issue) return new ApiError("invalid_body", `${where}: invalid`);
  const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
  const more = err.issues.length > 1 ? ` (and ${err.issues.length - 1} more problem(s))` : "";
  return new ApiError("invalid_body", `${where}${path}: ${issue.message}${more}`);
}

export const errors = {
  callNotFound: (name: string) => new ApiError("call_not_found", `call ${name}: no FunctionCall with this name`),
  notAssigned: (name: string, pod: string) =>
    new ApiError(
      "not_assigned",
      `call ${name}: not assigned to pod ${pod}; a pod may act only on calls assigned to it`,
    ),
  staleAttempt: (name: string, attempt: number, current: number, phase: string) =>
    new ApiError(
      "stale_attempt",
      `call ${name}: attempt ${attempt} is not the running one (current attempt ${current}, phase ${phase}); the report is ignored`,
    ),
  notInRequest: (what: string, request: string, pod: string) =>
    new ApiError("not_in_request", `${what}: pod ${pod} runs no call of request ${request}`),
};
