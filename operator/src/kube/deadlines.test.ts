import { afterEach, describe, expect, it, vi } from "vitest";
import { Deadlines } from "./deadlines.js";

afterEach(() => {
  vi.useRealTimers();
});

function setup() {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  const fired: string[] = [];
  const d = new Deadlines<string>(
    () => performance.now(),
    (k) => fired.push(k),
  );
  return { d, fired, at: (ms: number) => performance.now() + ms };
}

describe("Deadlines", () => {
  it("fires each key once at its deadline, in deadline order, behind a single timer", async () => {
    const { d, fired, at } = setup();
    d.setEarliest("c", at(30));
    d.setEarliest("a", at(10));
    d.setEarliest("b", at(20));
    d.setEarliest("d", at(20));
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(9);
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(["a"]);
    await vi.advanceTimersByTimeAsync(10);
    expect(fired.sort()).toEqual(["a", "b", "d"]);
    await vi.advanceTimersByTimeAsync(100);
    expect(fired).toEqual(["a", "b", "d", "c"]);
    expect(d.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("an earlier deadline replaces a later one, a later one is ignored, a deleted key never fires", async () => {
    const { d, fired, at } = setup();
    d.setEarliest("a", at(5000));
    d.setEarliest("a", at(20));
    d.setEarliest("a", at(3000));
    d.setEarliest("gone", at(10));
    d.delete("gone");
    expect(d.size).toBe(1);
    await vi.advanceTimersByTimeAsync(19);
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(["a"]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(fired).toEqual(["a"]); // the replaced 5000 ms entry is stale
    d.setEarliest("gone", at(10)); // set again after a delete: fires
    await vi.advanceTimersByTimeAsync(10);
    expect(fired).toEqual(["a", "gone"]);
  });

  it("keeps the heap to the live deadlines when most were deleted, and still fires those", async () => {
    const { d, fired, at } = setup();
    for (let i = 0; i < 5000; i++) d.setEarliest(`k${i}`, at(1000 + i));
    for (let i = 0; i < 5000; i++) if (i % 100 !== 0) d.delete(`k${i}`);
    expect(d.size).toBe(50);
    expect((d as unknown as { heapAt: number[] }).heapAt.length).toBeLessThan(2 * 1024 + 50);
    await vi.advanceTimersByTimeAsync(7000);
    expect(fired).toEqual(Array.from({ length: 50 }, (_, j) => `k${j * 100}`));
  });

  it("clear drops every deadline and the timer", async () => {
    const { d, fired, at } = setup();
    d.setEarliest("a", at(10));
    d.clear();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(100);
    expect(fired).toEqual([]);
  });
});
