import { describe, expect, it } from "vitest";
import { backoffDelay, classifyStatus, retryAfterMs } from "./backoff.js";

describe("retry policy", () => {
  const policy = { initialMs: 100, maxMs: 2_000, multiplier: 2 };

  it("doubles from the initial delay up to the cap, with equal jitter", () => {
    const lo = [0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, policy, () => 0));
    const hi = [0, 1, 2, 3, 4, 5, 10].map((n) => backoffDelay(n, policy, () => 1));
    expect(hi).toEqual([100, 200, 400, 800, 1600, 2000, 2000]);
    expect(lo).toEqual([50, 100, 200, 400, 800, 1000, 1000]);
  });

  it("spreads retries between half and all of the step", () => {
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(3, policy);
      expect(d).toBeGreaterThanOrEqual(400);
      expect(d).toBeLessThanOrEqual(800);
    }
  });

  it("retries what may pass later, and nothing else", () => {
    expect(classifyStatus(200)).toBe("ok");
    expect(classifyStatus(204)).toBe("ok");
    for (const s of [408, 429, 500, 502, 503, 504]) expect(classifyStatus(s)).toBe("retry");
    expect(classifyStatus(409)).toBe("stale");
    for (const s of [400, 401, 403, 404, 413, 422]) expect(classifyStatus(s)).toBe("final");
  });

  it("reads Retry-After in seconds or as a date", () => {
    expect(retryAfterMs("3")).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs("soon")).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});
