import { describe, expect, it } from "vitest";
import { decideScale, desiredContainers, type ScaleInput, type ScalePod } from "./scale-decide.js";

const NOW = 1_000_000;
const IDLE = 300_000;

const pod = (name: string, over: Partial<ScalePod> = {}): ScalePod => ({
  name,
  current: true,
  terminating: false,
  failed: false,
  ready: true,
  running: 0,
  idleSince: NOW - 10_000,
  unhealthy: false,
  ...over,
});
const longIdle = (name: string, idleMs: number, over: Partial<ScalePod> = {}) =>
  pod(name, { idleSince: NOW - idleMs, ...over });

const base: ScaleInput = {
  queued: 0,
  running: 0,
  concurrency: 1,
  minContainers: 0,
  maxContainers: 10,
  pods: [],
  now: NOW,
  idleTimeoutMs: IDLE,
};

describe("desiredContainers", () => {
  it.each([
    // queued, running, concurrency, min, max, floor, desired
    [0, 0, 1, 0, 10, 0, 0],
    [1, 0, 1, 0, 10, 0, 1],
    [3, 2, 2, 0, 10, 0, 3],
    [100, 0, 4, 0, 10, 0, 10],
    [0, 0, 1, 2, 10, 0, 2],
    [5, 0, 1, 2, 3, 0, 3],
    [0, 0, 1, 0, 10, 1, 1],
    [0, 0, 1, 0, 1, 3, 1],
  ])("queued %i running %i concurrency %i min %i max %i floor %i → %i", (q, r, c, min, max, floor, want) => {
    expect(
      desiredContainers({ queued: q, running: r, concurrency: c, minContainers: min, maxContainers: max, floor }),
    ).toBe(want);
  });
});

describe("decideScale", () => {
  const cases: { name: string; input: Partial<ScaleInput>; create: number; delete: string[]; nextCheckAt?: number }[] =
    [
      { name: "nothing to do at zero", input: {}, create: 0, delete: [] },
      { name: "scales up at once for queued work", input: { queued: 3 }, create: 3, delete: [] },
      {
        name: "counts starting pods, no overshoot",
        input: { queued: 3, pods: [pod("a", { ready: false }), pod("b")] },
        create: 1,
        delete: [],
      },
      {
        name: "respects concurrency",
        input: { queued: 5, running: 3, concurrency: 4, pods: [pod("a", { running: 3 })] },
        create: 1,
        delete: [],
      },
      { name: "caps at max", input: { queued: 50, maxContainers: 2, pods: [pod("a")] }, create: 1, delete: [] },
      { name: "keeps min warm", input: { minContainers: 2 }, create: 2, delete: [] },
      {
        name: "keeps a pod idle for less than the timeout",
        input: { pods: [longIdle("a", IDLE - 1000)] },
        create: 0,
        delete: [],
        nextCheckAt: NOW + 1000,
      },
      {
        name: "scales to zero after the idle timeout",
        input: { pods: [longIdle("a", IDLE)] },
        create: 0,
        delete: ["a"],
      },
      {
        name: "never deletes below min",
        input: { minContainers: 1, pods: [longIdle("a", IDLE * 3), longIdle("b", IDLE * 2)] },
        create: 0,
        delete: ["a"],
      },
      {
        name: "never deletes busy pods",
        input: {
          running: 1,
          pods: [longIdle("a", IDLE * 3, { running: 1 }), longIdle("b", IDLE * 2), longIdle("c", IDLE)],
        },
        create: 0,
        delete: ["b", "c"],
      },
      {
        name: "deletes the longest idle first",
        input: { queued: 1, pods: [longIdle("a", IDLE), longIdle("b", IDLE * 5), longIdle("c", IDLE * 2)] },
        create: 0,
        delete: ["b", "c"],
      },
      {
        name: "reaps unhealthy idle pods before healthy ones",
        input: { queued: 1, pods: [longIdle("a", IDLE * 5), longIdle("b", IDLE, { unhealthy: true, ready: false })] },
        create: 0,
        delete: ["b"],
      },
      {
        name: "replaces failed pods",
        input: { minContainers: 1, pods: [pod("a", { failed: true, ready: false })] },
        create: 1,
        delete: ["a"],
      },
      {
        name: "ignores terminating pods",
        input: { queued: 1, pods: [pod("a", { terminating: true })] },
        create: 1,
        delete: [],
      },
      {
        name: "replaces an idle outdated pod at once",
        input: { minContainers: 1, pods: [pod("old", { current: false })] },
        create: 1,
        delete: ["old"],
      },
      {
        name: "keeps a busy outdated pod until a current one is ready",
        input: { running: 1, pods: [pod("old", { current: false, running: 1 }), pod("new", { ready: false })] },
        create: 0,
        delete: [],
      },
      {
        name: "drains a busy outdated pod once a current one is ready",
        input: { running: 1, pods: [pod("old", { current: false, running: 1 }), pod("new")] },
        create: 0,
        delete: ["old"],
      },
      {
        name: "a crash-looping pod counts (the kubelet backs off), no extra pods",
        input: { queued: 1, pods: [pod("a", { unhealthy: true, ready: false })] },
        create: 0,
        delete: [],
      },
      { name: "floor keeps one pod for code discovery", input: { floor: 1 }, create: 1, delete: [] },
    ];
  it.each(cases)("$name", (c) => {
    const d = decideScale({ ...base, ...c.input });
    expect(d.create).toBe(c.create);
    expect(d.delete.map((x) => x.name)).toEqual(c.delete);
    expect(d.nextCheckAt).toBe(c.nextCheckAt);
  });

  it("names the reason of each deletion", () => {
    const d = decideScale({
      ...base,
      pods: [pod("f", { failed: true }), pod("o", { current: false }), longIdle("i", IDLE)],
    });
    expect(d.delete).toEqual([
      { name: "f", reason: "failed" },
      { name: "o", reason: "outdated" },
      { name: "i", reason: "idle" },
    ]);
  });
});
