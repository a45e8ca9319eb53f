import { describe, expect, it } from "vitest";
import { BODY_LIMITS, assertJsonDepth, bodyLimitOf } from "./limits.js";

describe("runtime API body limits", () => {
  it("value routes get the larger limit, every other route the smaller one", () => {
    const limits = { ...BODY_LIMITS, valueBodyBytes: 100, otherBodyBytes: 10 };
    for (const url of [
      "/runtime/v1/calls/:name/result",
      "/runtime/v1/calls/:name/children",
      "/runtime/v1/requests/:request/state/:key",
    ])
      expect(bodyLimitOf({ url }, limits), url).toBe(100);
    for (const url of [
      "/runtime/v1/heartbeat",
      "/runtime/v1/calls/:name/failure",
      "/runtime/v1/wait",
      "/runtime/v1/blobs",
    ])
      expect(bodyLimitOf({ url }, limits), url).toBe(10);
  });

  it("refuses JSON nested past the cap, naming where, without recursion", () => {
    let v: unknown = 1;
    for (let i = 0; i < 100_000; i++) v = [v];
    expect(() => assertJsonDepth({ a: { b: v } }, 512)).toThrow(
      /^body\.a\.b(\[0\]){510}: nested deeper than 512 levels/,
    );
    let ok: unknown = 1;
    for (let i = 0; i < 511; i++) ok = [ok];
    expect(() => assertJsonDepth({ ok }, 512)).not.toThrow();
  });

  it("leaves a body that is no parsed JSON (an upload's stream) alone", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    class Stream {
      self = this;
    }
    expect(() => assertJsonDepth(new Stream(), 2)).not.toThrow();
    // A cyclic plain object (JSON cannot make one) still ends, at the cap.
    expect(() => assertJsonDepth(cyclic, 2)).toThrow(/body\.self\.self: nested deeper than 2/);
    expect(() => assertJsonDepth("text", 2)).not.toThrow();
  });
});
