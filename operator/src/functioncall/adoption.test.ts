import { describe, expect, it } from "vitest";
import { podsGoneAtStart } from "./adoption.js";
import { mkCall } from "./testing.js";

describe("podsGoneAtStart", () => {
  it("names each missing pod of a Running call once, and nothing else", () => {
    const calls = [
      mkCall("a", {}, { phase: "Running", pod: "p-gone", attempts: 1 }),
      mkCall("b", {}, { phase: "Running", pod: "p-gone", attempts: 1 }),
      mkCall("c", {}, { phase: "Running", pod: "p-alive", attempts: 1 }),
      mkCall("d", {}, { phase: "Succeeded", pod: "p-old", attempts: 1 }),
      mkCall("e", {}, { phase: "Queued", pod: "p-old2", attempts: 1 }),
    ];
    const alive = new Set(["ns/p-alive"]);
    expect(podsGoneAtStart(calls, (ns, pod) => alive.has(`${ns}/${pod}`))).toEqual([
      { namespace: "ns", pod: "p-gone" },
    ]);
  });
});
