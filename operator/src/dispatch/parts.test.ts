import { describe, expect, it } from "vitest";
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
