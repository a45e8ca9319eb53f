// The runtime API's error catalog: a stable code, the HTTP status, and a message naming the field
// and the rule. Bodies are `errorBody` ({code, message}) of protocol/.
import type { z } from "zod";
import { ERROR_STATUS, type ErrorCode } from "../../../protocol/index.js";
import { type Rejectable, type Rejection, isRejection } from "./port.js";

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

/** The error of a rejection the port answered. */
export const fromRejection = (r: Rejection): ApiError => new ApiError(r.code, r.message);

/** The value, or throws the rejection as the API error it answers with. */
export function orThrow<T>(x: Rejectable<T>): T {
  if (isRejection(x)) throw fromRejection(x);
  return x;
}
