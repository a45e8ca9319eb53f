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

/** The kind of write an error answered; a 404 means "gone" to an update but "refused" to a create. */
export type WriteVerb = "create" | "update" | "patch" | "delete";

// An RBAC denial reads `... is forbidden: User "x" cannot create resource ...`: right after an
// install or a role change the grant may not have reached the authorizer yet, so it is retried.
const RBAC_DENIAL = /is forbidden: User "[^"]*" cannot /;
// A quota frees up when other objects go.
const QUOTA_EXCEEDED = /exceeded quota/;

/**
 * The API server refused the object and will refuse it again whatever the timing: 400, 403 other
 * than an RBAC denial or a quota, 404 on create (its namespace is gone), 413, 422 and other 4xx
 * that are not a conflict (409), a relist (410) or throttling (429). Transient ones (429, 5xx,
 * transport failures) and 409/410 (the caller's own handling) are not permanent.
 */
export function isPermanent(e: unknown, verb: WriteVerb): boolean {
  const c = code(e);
  if (c === undefined || c < 400 || c >= 500) return false;
  if (c === 409 || c === 410 || c === 429) return false;
  if (c === 404) return verb === "create";
  if (c === 403) {
    const msg = e instanceof Error ? e.message : "";
    return !RBAC_DENIAL.test(msg) && !QUOTA_EXCEEDED.test(msg);
  }
  return true;
}

/**
 * What a permanent refusal says: the object, the status and the server's message (for 422 the
 * field and the rule), e.g. `the API server refused to create FunctionCall ns/x (422 Invalid): ...`.
 */
export function refusalMessage(e: unknown, verb: WriteVerb, object: string): string {
  const c = code(e);
  const reason = e instanceof KubeApiError ? e.reason : "";
  const status = e instanceof KubeApiError ? e.status?.message : undefined;
  const detail = status ?? (e instanceof Error ? e.message : String(e));
  return `the API server refused to ${verb} ${object} (${c ?? "?"}${reason ? ` ${reason}` : ""}): ${detail}`;
}

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

/**
 * Per-key memory of writes the API server refused for good, so that a controller does not repeat
 * them on every reconcile: a refused key is held for `firstMs`, doubling up to `maxMs` while the
 * refusals repeat; a new `version` of the object (e.g. its generation: a user changed it) or a
 * success releases it at once.
 */
export class RefusalHold {
  private readonly held = new Map<string, { until: number; delayMs: number; version: string }>();

  constructor(
    private readonly firstMs = 10_000,
    private readonly maxMs = 300_000,
  ) {}

  /** Records a refusal at `now`; the key is held until the returned time. */
  refused(key: string, version: string, now: number): number {
    const prev = this.held.get(key);
    const delayMs = prev && prev.version === version ? Math.min(prev.delayMs * 2, this.maxMs) : this.firstMs;
    this.held.set(key, { until: now + delayMs, delayMs, version });
    return now + delayMs;
  }

  /** Milliseconds the key is still held for; undefined when writes may be tried. */
  heldFor(key: string, version: string, now: number): number | undefined {
    const h = this.held.get(key);
    if (!h) return undefined;
    if (h.version !== version) {
      this.held.delete(key);
      return undefined;
    }
    return h.until > now ? h.until - now : undefined;
  }

  release(key: string): void {
    this.held.delete(key);
  }
}
