import { describe, expect, it } from "vitest";
import { authenticate, podToken, verifyPodToken } from "./credentials.js";

describe("credentials", () => {
  it("HMAC-SHA256 of <namespace>/<pod>, hex, verified in constant time", () => {
    const t = podToken("key", "ns", "p");
    expect(t).toMatch(/^[0-9a-f]{64}$/);
    expect(verifyPodToken("key", "ns", "p", t)).toBe(true);
    expect(verifyPodToken("key", "ns", "q", t)).toBe(false);
    expect(verifyPodToken("key", "ns", "p", t.slice(1))).toBe(false);
    expect(authenticate("key", { "x-trellis-pod": "ns/p", authorization: `Bearer ${t}` })).toEqual({
      namespace: "ns",
      pod: "p",
    });
  });
});
