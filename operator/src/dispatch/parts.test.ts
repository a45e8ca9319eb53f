import { describe, expect, it } from "vitest";
import type { KubeObject } from "../kube/index.js";
import { podIdentityFromCache } from "./pod-identity.js";
import { ReadyQueue } from "./ready-queue.js";

describe("ReadyQueue", () => {
  it("FIFO of due calls, retryAfter respected, removal and dedup", () => {
    const q = new ReadyQueue("ns", "app", "f");
    q.add("a", 0);
    q.add("b", 1, 100);
    q.add("c", 2);
    q.add("a", 3);
    expect(q.size).toBe(3);
    q.remove("c");
    expect(q.take(10, 50)).toEqual([{ name: "a", readyAt: 0 }]);
    expect(q.hasDue(50)).toBe(false);
    expect(q.nextDue()).toBe(100);
    expect(q.take(10, 100)).toEqual([{ name: "b", readyAt: 1 }]);
    expect(q.size).toBe(0);
  });
  it("takes at most n, oldest first", () => {
    const q = new ReadyQueue("ns", "app", "f");
    for (let i = 0; i < 5; i++) q.add(`c${i}`, i);
    expect(q.take(2, 10).map((e) => e.name)).toEqual(["c0", "c1"]);
    expect(q.take(5, 10).map((e) => e.name)).toEqual(["c2", "c3", "c4"]);
  });
});

describe("pod identity", () => {
  it("application from the label, function from the annotation (exact Python name)", async () => {
    const pods = new Map([
      [
        "ns/p1",
        {
          metadata: {
            name: "p1",
            labels: { "trellis.dev/application": "app", "trellis.dev/function": "priv.abc" },
            annotations: { "trellis.dev/function-name": "_priv" },
          },
        },
      ],
      [
        "ns/p2",
        { metadata: { name: "p2", labels: { "trellis.dev/application": "app", "trellis.dev/function": "f" } } },
      ],
      ["ns/p3", { metadata: { name: "p3", labels: {} } }],
    ]);
    const id = podIdentityFromCache({ get: (k: string) => pods.get(k) as KubeObject | undefined });
    expect(id("ns", "p1")).toEqual({ application: "app", function: "_priv" });
    expect(id("ns", "p2")).toEqual({ application: "app", function: "f" });
    expect(id("ns", "p3")).toBeUndefined();
    expect(id("ns", "nope")).toBeUndefined();
  });
});
