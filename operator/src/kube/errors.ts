// Errors from the API server, typed by HTTP status and Status.reason so that callers can tell a
// lost optimistic-concurrency race (409 Conflict) from an existing object (409 AlreadyExists).

export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[] };
}

export class KubeApiError extends Error {
  override readonly name = "KubeApiError";
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
    readonly status?: KubeStatus,
  ) {
    // The server's message is kept whole: for 422 it names the field and the rule.
    super(message);
  }
}

const code = (e: unknown): number | undefined =>
  e instanceof KubeApiError ? e.statusCode : (e as { statusCode?: number; code?: number } | null)?.statusCode;

export const isNotFound = (e: unknown): boolean => code(e) === 404;
/** A resourceVersion precondition failed (someone else wrote first). */
export const isConflict = (e: unknown): boolean =>
  code(e) === 409 && !(e instanceof KubeApiError && e.reason === "AlreadyExists");
export const isAlreadyExists = (e: unknown): boolean =>
  code(e) === 409 && e instanceof KubeApiError && e.reason === "AlreadyExists";
export const isInvalid = (e: unknown): boolean => code(e) === 422;
/** The requested resourceVersion is too old (watch or list continue): relist. */
export const isGone = (e: unknown): boolean => code(e) === 410;
/** Worth retrying as is: throttled, server busy or a transport failure. */
export const isTransient = (e: unknown): boolean => {
  const c = code(e);
  if (c === undefined) return !(e instanceof KubeApiError);
  return c === 429 || c >= 500;
};

export function errorFromResponse(statusCode: number, body: string, method: string, path: string): KubeApiError {
  let status: KubeStatus | undefined;
  try {
    const parsed = JSON.parse(body) as KubeStatus;
    if (parsed && typeof parsed === "object") status = parsed;
  } catch {
    // not JSON: keep the text
  }
  const reason = status?.reason ?? (statusCode === 404 ? "NotFound" : `HTTP${statusCode}`);
  const message = status?.message ?? (body.slice(0, 500) || `HTTP ${statusCode}`);
  return new KubeApiError(statusCode, reason, `${method} ${path}: ${message}`, method, path, status);
}
