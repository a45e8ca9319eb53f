// Retry policy of every operator request: exponential backoff with jitter, and which answers
// are worth another try.

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  multiplier: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 50, maxMs: 5_000, multiplier: 2 };

/**
 * Delay before retry number `retry` (0 = the first retry): "equal jitter", half fixed and half
 * random, so that many sidecars retrying after an operator restart spread out but none waits
 * much longer than the exponential schedule.
 */
export function backoffDelay(retry: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random = Math.random): number {
  const exp = policy.initialMs * Math.pow(policy.multiplier, Math.max(0, retry));
  const capped = Math.min(policy.maxMs, exp);
  return Math.round(capped / 2 + random() * (capped / 2));
}

export type Verdict = "ok" | "retry" | "stale" | "final";

/** What to do with an HTTP status: 2xx done; 409 stale attempt; 408/429/5xx retry; other 4xx final. */
export function classifyStatus(status: number): Verdict {
  if (status >= 200 && status < 300) return "ok";
  if (status === 409) return "stale";
  if (status === 408 || status === 429 || status >= 500) return "retry";
  return "final";
}

/** Retry-After in ms (seconds or an HTTP date), if the server sent a usable one. */
export function retryAfterMs(header: string | undefined, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^[0-9]+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
