// The effective retry policy and timeout of a call. Precedence: the call's spec override >
// Application spec.functions[name] > spec.defaults > the decorator (what the runtime discovered)
// > operator defaults.
import type { Application, FunctionCall, RetryPolicy } from "../../../protocol/index.js";

export interface DiscoveredSettings {
  timeoutSeconds?: number;
  retries?: RetryPolicy;
}

export interface CallPolicy {
  retries: RetryPolicy;
  timeoutSeconds: number;
}

export const NO_RETRIES: RetryPolicy = {
  maxRetries: 0,
  initialDelaySeconds: 1,
  maxDelaySeconds: 60,
  delayMultiplier: 2,
};

const first = <T>(...xs: (T | undefined)[]): T | undefined => xs.find((x) => x !== undefined);

export function resolvePolicy(
  call: Pick<FunctionCall, "spec">,
  app: Pick<Application, "spec"> | undefined,
  discovered: DiscoveredSettings | undefined,
  defaultTimeoutSeconds: number,
): CallPolicy {
  const fn = app?.spec.functions?.find((f) => f.name === call.spec.function);
  const d = app?.spec.defaults;
  const retries = first(call.spec.retries, fn?.retries, d?.retries, discovered?.retries) ?? NO_RETRIES;
  const timeoutSeconds =
    first(call.spec.timeoutSeconds, fn?.timeoutSeconds, d?.timeoutSeconds, discovered?.timeoutSeconds) ??
    defaultTimeoutSeconds;
  return { retries: { ...NO_RETRIES, ...retries }, timeoutSeconds };
}

/** Milliseconds to wait before user retry number `retry` (1-based). */
export function backoffMs(policy: RetryPolicy, retry: number): number {
  const s = Math.min(
    policy.initialDelaySeconds * Math.pow(policy.delayMultiplier, Math.max(retry - 1, 0)),
    policy.maxDelaySeconds,
  );
  return Math.round(s * 1000);
}
