import { afterEach, describe, expect, it, vi } from "vitest";
import { KeyedWorkQueue, backoffDelay } from "./workqueue.js";

/** A promise and its resolver, to hold a reconcile open. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

async function until(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setImmediate(r));
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe("KeyedWorkQueue", () => {
  it("deduplicates a key while it waits", async () => {
    const q = new KeyedWorkQueue();
    const seen: string[] = [];
    q.add("ns/a");
    q.add("ns/a");
    q.add("ns/b");
    q.add("ns/a");
    expect(q.length()).toBe(2);
    q.run(async (k) => void seen.push(k), 1);
    await until(() => seen.length === 2);
    await q.shutdown();
    expect(seen).toEqual(["ns/a", "ns/b"]);
  });

  it("never runs one key in two workers; an add during a run queues it once more", async () => {
    const q = new KeyedWorkQueue();
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const g = gate();
    q.run(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs++;
      if (runs === 1) await g.promise;
      active--;
    }, 8);
    q.add("ns/a");
    await until(() => runs === 1);
    q.add("ns/a");
    q.add("ns/a");
    expect(q.length()).toBe(0); // held as dirty, not queued beside the running one
    g.open();
    await until(() => runs === 2);
    await q.shutdown();
    expect(maxActive).toBe(1);
    expect(runs).toBe(2);
  });

  it("runs different keys concurrently up to the worker count", async () => {
    const q = new KeyedWorkQueue();
    let active = 0;
    let maxActive = 0;
    const g = gate();
    q.run(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await g.promise;
      active--;
    }, 3);
    for (let i = 0; i < 10; i++) q.add(`ns/k${i}`);
    await until(() => active === 3);
    expect(q.length()).toBe(7);
    g.open();
    await until(() => q.stats().reconciles === 10 && active === 0);
    await q.shutdown();
    expect(maxActive).toBe(3);
  });

  it("backs off exponentially per key on errors and resets on success", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const q = new KeyedWorkQueue({ baseDelayMs: 4, maxDelayMs: 1000 });
    const times: number[] = [];
    q.run(async () => {
      times.push(performance.now());
      if (times.length <= 4) throw new Error("boom");
    }, 1);
    q.add("ns/a");
    await vi.advanceTimersByTimeAsync(0);
    expect(times.length).toBe(1); // the first run needs no timer
    // each retry comes exactly when its backoff has passed on the fake clock, not before
    for (const d of [4, 8, 16, 32]) {
      const runs = times.length;
      await vi.advanceTimersByTimeAsync(d - 1);
      expect(times.length).toBe(runs);
      await vi.advanceTimersByTimeAsync(1);
      expect(times.length).toBe(runs + 1);
    }
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps).toEqual([4, 8, 16, 32]);
    expect(q.failureCount("ns/a")).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(times.length).toBe(5); // the success ended the retries
    await q.shutdown();
  });

  it("computes the backoff ladder with a cap", () => {
    expect([0, 1, 2, 3, 4].map((n) => backoffDelay(n, 5, 60_000))).toEqual([0, 5, 10, 20, 40]);
    expect(backoffDelay(20, 5, 60_000)).toBe(60_000);
    expect(backoffDelay(5000, 5, 60_000)).toBe(60_000);
  });

  it("addAfter: the earliest deadline wins", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const q = new KeyedWorkQueue();
    const at: number[] = [];
    const t0 = performance.now();
    q.run(async () => void at.push(performance.now() - t0), 1);
    q.addAfter("ns/a", 5000);
    q.addAfter("ns/a", 20); // earlier: replaces
    q.addAfter("ns/a", 3000); // later: ignored
    expect(q.stats().delayed).toBe(1);
    await vi.advanceTimersByTimeAsync(19);
    expect(at).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(at).toEqual([20]);
    expect(q.stats().delayed).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(at).toEqual([20]); // neither the replaced nor the ignored deadline fires later
    await q.shutdown();
  });

  it("requeueAfterMs from a reconcile schedules the key again", async () => {
    const q = new KeyedWorkQueue();
    let runs = 0;
    q.run(async () => (++runs === 1 ? { requeueAfterMs: 10 } : undefined), 1);
    q.add("ns/a");
    await until(() => runs === 2);
    await q.shutdown();
  });

  it("resultsOwnTimers: a reconcile that asks for no requeue drops the timer an earlier one set", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    for (const owned of [true, false]) {
      const q = new KeyedWorkQueue({ resultsOwnTimers: owned });
      let runs = 0;
      // First run: still running, come back at the deadline. Second (the call finished): nothing.
      q.run(async () => (++runs === 1 ? { requeueAfterMs: 60_000 } : undefined), 1);
      q.add("ns/a");
      await vi.advanceTimersByTimeAsync(0);
      expect(q.stats().delayed).toBe(1);
      q.add("ns/a");
      await vi.advanceTimersByTimeAsync(0);
      expect(runs).toBe(2);
      expect(q.stats().delayed).toBe(owned ? 0 : 1);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(runs).toBe(owned ? 2 : 3);
      await q.shutdown();
    }
  });

  it("shutdown waits for running reconciles and drops the rest", async () => {
    const q = new KeyedWorkQueue();
    const g = gate();
    let finished = 0;
    let started = 0;
    q.run(async () => {
      started++;
      await g.promise;
      finished++;
    }, 2);
    for (let i = 0; i < 5; i++) q.add(`ns/k${i}`);
    q.addAfter("ns/later", 10);
    await until(() => started === 2);
    let done = false;
    const s = q.shutdown().then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    g.open();
    await s;
    expect(finished).toBe(2);
    expect(started).toBe(2);
    q.add("ns/after");
    expect(q.length()).toBe(0);
  });

  it("starts a reconcile a microtask after add when idle: no timer, no clock time", async () => {
    // Every timer is fake and never advanced: a poll or timer hop between add and start would
    // leave the key unstarted, and any waited time would show on the fake clock.
    vi.useFakeTimers({
      toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "setImmediate", "performance"],
    });
    const waits: number[] = [];
    const q = new KeyedWorkQueue({ hooks: { onStart: (_k, w) => waits.push(w) } });
    let n = 0;
    q.run(async () => void n++, 4);
    for (let i = 0; i < 100; i++) {
      q.add(`ns/k${i}`);
      for (let j = 0; j < 10; j++) await Promise.resolve(); // microtasks only
      expect(n).toBe(i + 1);
    }
    await q.shutdown();
    expect(waits).toEqual(new Array(100).fill(0));
  });

  it("lets the event loop in during a long run of reconciles that do no I/O", async () => {
    const q = new KeyedWorkQueue();
    let done = 0;
    q.run(async () => {
      const until = performance.now() + 1;
      while (performance.now() < until); // 1 ms of work, no await on I/O
      done++;
    }, 4);
    let doneWhenTimerRan = -1;
    setTimeout(() => (doneWhenTimerRan = done), 0);
    for (let i = 0; i < 300; i++) q.add(`ns/k${i}`);
    while (done < 300) await new Promise((r) => setImmediate(r));
    // Without yielding, all 300 ms of reconciles ran before the timer's turn.
    expect(doneWhenTimerRan).toBeGreaterThanOrEqual(0);
    expect(doneWhenTimerRan).toBeLessThan(100);
    await q.shutdown();
  });

  it("rejects bad options with the field name", () => {
    expect(() => new KeyedWorkQueue({ baseDelayMs: 0 })).toThrow(/baseDelayMs/);
    expect(() => new KeyedWorkQueue().run(async () => {}, 0)).toThrow(/workers/);
  });
});
