import { describe, expect, it } from "vitest";
import { setCondition } from "./conditions.js";

describe("setCondition", () => {
  const t0 = "2026-01-01T00:00:00.000Z";
  const t1 = "2026-01-01T00:05:00.000Z";
  it("appends a new condition with the current time", () => {
    expect(setCondition(undefined, { type: "Ready", status: "False", reason: "Loading", message: "m" }, t0)).toEqual([
      { type: "Ready", status: "False", reason: "Loading", message: "m", lastTransitionTime: t0 },
    ]);
  });
  it("keeps lastTransitionTime while the status holds, even if reason and message change", () => {
    const a = setCondition(undefined, { type: "Ready", status: "False", reason: "A", message: "a" }, t0);
    const b = setCondition(a, { type: "Ready", status: "False", reason: "B", message: "b", observedGeneration: 2 }, t1);
    expect(b).toEqual([
      { type: "Ready", status: "False", reason: "B", message: "b", lastTransitionTime: t0, observedGeneration: 2 },
    ]);
  });
  it("moves lastTransitionTime when the status changes and keeps the order of others", () => {
    let l = setCondition(undefined, { type: "CodeLoaded", status: "Unknown", reason: "A", message: "" }, t0);
    l = setCondition(l, { type: "Ready", status: "False", reason: "A", message: "" }, t0);
    l = setCondition(l, { type: "CodeLoaded", status: "True", reason: "Loaded", message: "" }, t1);
    expect(l.map((c) => [c.type, c.lastTransitionTime])).toEqual([
      ["CodeLoaded", t1],
      ["Ready", t0],
    ]);
  });
});
