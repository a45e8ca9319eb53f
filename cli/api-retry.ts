// When a client of the operator's HTTP API tries again. An operator restart or failover (two
// replicas behind one Service) shows for a few seconds as refused or broken connections and as
// 502/503/504 from whatever proxies to the API: the client waits that out, with exponential backoff
// and jitter, until its deadline. Every other answer (4xx, 500) is the API's verdict, returned at once.

export const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);
export const DEFAULT_RETRY_SECONDS = 120;
const FIRST_DELAY_MS = 200;
const MAX_DELAY_MS = 5_000;
/** Until the response headers: a replica that hangs is given up on and the request sent again. */
export const ATTEMPT_TIMEOUT_MS = 30_000;

/** Codes of a connection that failed or broke (on a fetch rejection or one of its causes). */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/** What went wrong with one attempt: an HTTP answer, or a rejection of fetch (or of reading the body). */
export type Failure = { status: number; retryAfter?: string | null } | { error: unknown };

export interface RetryDecision {
  retry: boolean;
  delayMs: number;
  /** The failure is one that retrying can fix: when `retry` is false, the deadline ran out. */
  transient: boolean;
}

/** A refused, reset or timed-out connection; not a wrong URL, host name or certificate. */
export function isConnectionError(e: unknown): boolean {
  let c = e;
  for (let depth = 0; c && typeof c === "object" && depth < 5; depth++) {
    const { code, name, cause } = c as { code?: unknown; name?: unknown; cause?: unknown };
    if (typeof code === "string" && CONNECTION_CODES.has(code)) return true;
    if (name === "TimeoutError") return true;
    c = cause;
  }
  return false;
}

/** The pause after failed attempt `attempt` (1, 2, …): 0.2 s doubling up to 5 s, jittered to 50-100 %. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const full = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.min(Math.max(attempt, 1) - 1, 16));
  // Jitter, so that the clients one failover cut off do not all come back at the same moment.
  return full * (0.5 + 0.5 * random());
}

/** Retry-After in milliseconds when it is a number of seconds (an HTTP date: undefined, backoff applies). */
export function retryAfterMs(value: string | null | undefined): number | undefined {
  if (!value || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return undefined;
  return Number(value) * 1000;
}

/**
 * Whether to send attempt `attempt + 1` after `failure`, and after how long, when `elapsedMs` of
 * the `deadlineMs` budget are spent. A Retry-After (429, 503) past the deadline ends the retries:
 * the server said not before then.
 */
export function retryDecision(
  attempt: number,
  failure: Failure,
  elapsedMs: number,
  deadlineMs: number,
  random: () => number = Math.random,
): RetryDecision {
  let told: number | undefined;
  if ("status" in failure) {
    if (!RETRY_STATUSES.has(failure.status)) return { retry: false, delayMs: 0, transient: false };
    if (failure.status === 429 || failure.status === 503) told = retryAfterMs(failure.retryAfter);
  } else if (!isConnectionError(failure.error)) return { retry: false, delayMs: 0, transient: false };
  const left = deadlineMs - elapsedMs;
  if (left <= 0 || (told !== undefined && told > left)) return { retry: false, delayMs: 0, transient: true };
  return { retry: true, delayMs: told ?? Math.min(backoffMs(attempt, random), left), transient: true };
}

/** The retry budget: TRELLIS_API_RETRY_SECONDS (0: one attempt), else 120 s. */
export function retryBudgetMs(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.TRELLIS_API_RETRY_SECONDS;
  if (value === undefined || value === "") return DEFAULT_RETRY_SECONDS * 1000;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0)
    throw new ApiRetryError(`TRELLIS_API_RETRY_SECONDS must be a number of seconds, not ${JSON.stringify(value)}`);
  return seconds * 1000;
}

/** The retries ran out (or the setting is wrong): the message names the URL, the attempts and the last error. */
export class ApiRetryError extends Error {
  override readonly name = "ApiRetryError";
  constructor(
    message: string,
    readonly status = 0,
    readonly attempts = 0,
  ) {
    super(message);
  }
}

/** A fetch rejection with what undici says underneath ("fetch failed (connect ECONNREFUSED …)"). */
function errorText(e: unknown): string {
  const cause = (e as { cause?: { message?: string } } | undefined)?.cause;
  const message = e instanceof Error ? e.message : String(e);
  return cause?.message ? `${message} (${cause.message})` : message;
}

/** An error answer's message: the JSON body's `message`, else the start of its text. */
function answerText(body: Buffer): string {
  const text = body.toString("utf8", 0, 2000);
  try {
    const message = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof message === "string") return message;
  } catch {
    // not JSON: the text itself
  }
  return text.slice(0, 500);
}

export interface RetryOptions {
  /** The retry budget from the first attempt; default retryBudgetMs(). */
  budgetMs?: number;
  attemptTimeoutMs?: number;
  /** True to end the retries at the first connection error (the caller has another way): it is thrown as is. */
  stopOnConnectionError?: boolean;
  sleep?: (ms: number) => Promise<void>;
}

/** One attempt: the whole answer when it is final, else what failed (a connection error only: others are thrown). */
async function attemptOnce(
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<Response | { failure: Failure; last: string }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new DOMException("no answer in time", "TimeoutError")), timeoutMs);
  try {
    const r = await fetch(url, { ...init, signal: ac.signal });
    clearTimeout(timer); // it bounds the wait for an answer, not the reading of a large one
    const body = Buffer.from(await r.arrayBuffer());
    if (RETRY_STATUSES.has(r.status))
      return {
        failure: { status: r.status, retryAfter: r.headers.get("retry-after") },
        last: `HTTP ${r.status}: ${answerText(body)}`,
      };
    const empty = body.length === 0 || [204, 205, 304].includes(r.status);
    return new Response(empty ? null : body, { status: r.status, statusText: r.statusText, headers: r.headers });
  } catch (e) {
    if (!isConnectionError(e)) throw e;
    return { failure: { error: e }, last: errorText(e) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * fetch, retried by retryDecision. The answer is read whole inside the retries (a reply cut off
 * halfway is sent again) and returned as a Response. A permanent fetch error is thrown as is;
 * retries that run out throw ApiRetryError. Only for requests that are safe to repeat: a GET, or
 * a POST that carries an idempotency key.
 */
export async function fetchWithRetry(url: string, init: RequestInit, opts: RetryOptions = {}): Promise<Response> {
  const budget = opts.budgetMs ?? retryBudgetMs();
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    const out = await attemptOnce(url, init, opts.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS);
    if (out instanceof Response) return out;
    const { failure, last } = out;
    if ("error" in failure && opts.stopOnConnectionError) throw failure.error;
    const elapsed = Date.now() - started;
    const d = retryDecision(attempt, failure, elapsed, budget);
    if (!d.retry)
      throw new ApiRetryError(
        `${init.method ?? "GET"} ${url}: gave up after ${attempt} attempt${attempt === 1 ? "" : "s"} in ${(elapsed / 1000).toFixed(1)}s; last error: ${last}`,
        "status" in failure ? failure.status : 0,
        attempt,
      );
    await sleep(d.delayMs);
  }
}
