import { afterEach, describe, expect, it, vi } from "vitest";
import { ProgressGate, SeqFinder, Serial, requestOf } from "./attempts.js";

describe("child sequence numbers", () => {
  it("finds seq from the protocol's test vectors", () => {
    const f = new SeqFinder("r0123456789abcdef", "r0123456789abcdef");
    expect(f.find("r0123456789abcdef-jipmbttnlnhowces")).toBe(1);
    expect(f.find("r0123456789abcdef-564r2ejegai5vlsd")).toBe(0);
    const g = new SeqFinder("r0123456789abcdef", "r0123456789abcdef-564r2ejegai5vlsd");
    expect(g.find("r0123456789abcdef-3sxgvgmsse7hi4tf")).toBe(0);
  });

  it("gives up past its reach on an id that is not a child", () => {
    expect(new SeqFinder("r1", "r1", 50).find("r1-aaaaaaaaaaaaaaaa")).toBeUndefined();
  });

  it("knows the request of a call from its name", () => {
    expect(requestOf("r0123456789abcdef-3sxgvgmsse7hi4tf")).toBe("r0123456789abcdef");
    expect(requestOf("r0123456789abcdef")).toBe("r0123456789abcdef");
  });
});

describe("Serial", () => {
  it("runs tasks of a key in order, keys independently, and survives a failing task", async () => {
    const seen: string[] = [];
    const errors: unknown[] = [];
    const s = new Serial((_k, e) => errors.push(e));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    void s.run("a", async () => {
      await gate;
      seen.push("a1");
    });
    void s.run("a", () => {
      throw new Error("boom");
    });
    void s.run("a", () => seen.push("a3"));
    await s.run("b", () => seen.push("b1"));
    expect(seen).toEqual(["b1"]);
    release();
    await s.idle();
    expect(seen).toEqual(["b1", "a1", "a3"]);
    expect(errors).toHaveLength(1);
    expect(s.size).toBe(0);
  });
});

describe("progress coalescing", () => {
  afterEach(() => vi.useRealTimers());

  it("sends the first update at once, then at most one per interval, last one wins", () => {
    vi.useFakeTimers();
    const sent: [string, number][] = [];
    const g = new ProgressGate<number>(250, (call, n) => sent.push([call, n]));
    g.push("c", 1);
    expect(sent).toEqual([["c", 1]]);
    g.push("c", 2);
    g.push("c", 3);
    g.push("d", 1);
    expect(sent).toEqual([
      ["c", 1],
      ["d", 1],
    ]);
    vi.advanceTimersByTime(250);
    expect(sent).toEqual([
      ["c", 1],
      ["d", 1],
      ["c", 3],
    ]);
    vi.advanceTimersByTime(1000);
    expect(sent).toHaveLength(3);
  });

  it("flushes the pending update when the call ends", () => {
    vi.useFakeTimers();
    const sent: number[] = [];
    const g = new ProgressGate<number>(250, (_c, n) => sent.push(n));
    g.push("c", 1);
    g.push("c", 9);
    g.finish("c");
    expect(sent).toEqual([1, 9]);
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual([1, 9]);
  });
});
