import { describe, expect, it } from "vitest";
import { WriteLanes } from "./write-lanes.js";

/** A write that finishes when its `done` is called. */
function pending() {
  let done!: () => void;
  const p = new Promise<void>((r) => (done = r));
  return { p, done };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("WriteLanes", () => {
  it("keeps `alone` bulk writes in flight while no status write is, in FIFO order", async () => {
    const lanes = new WriteLanes({ alone: 3, beside: 1 });
    const started: number[] = [];
    const writes = Array.from({ length: 5 }, () => pending());
    const all = writes.map((w, i) =>
      lanes.bulk(async () => {
        started.push(i);
        await w.p;
      }),
    );
    await tick();
    expect(started).toEqual([0, 1, 2]);
    expect(lanes.counts).toEqual({ bulk: 3, status: 0, waiting: 2 });
    writes[1]!.done();
    await tick();
    expect(started).toEqual([0, 1, 2, 3]);
    for (const w of writes) w.done();
    await Promise.all(all);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(lanes.counts).toEqual({ bulk: 0, status: 0, waiting: 0 });
  });

  it("sends a status write at once and holds bulk writes to `beside` until it ends", async () => {
    const lanes = new WriteLanes({ alone: 4, beside: 1 });
    const status = pending();
    const statusDone = lanes.status(() => status.p);
    const started: number[] = [];
    const writes = Array.from({ length: 4 }, () => pending());
    const all = writes.map((w, i) =>
      lanes.bulk(async () => {
        started.push(i);
        await w.p;
      }),
    );
    await tick();
    expect(started).toEqual([0]);
    // A second status write is never held back by bulk writes.
    let second = false;
    await lanes.status(async () => {
      second = true;
    });
    expect(second).toBe(true);
    writes[0]!.done();
    await tick();
    expect(started).toEqual([0, 1]);
    status.done();
    await statusDone;
    await tick();
    expect(started).toEqual([0, 1, 2, 3]);
    for (const w of writes) w.done();
    await Promise.all(all);
  });

  it("frees the slot of a bulk write that fails, and the failure reaches its caller", async () => {
    const lanes = new WriteLanes({ alone: 1, beside: 1 });
    const failed = lanes.bulk(() => Promise.reject(new Error("refused")));
    const next = lanes.bulk(async () => "made");
    await expect(failed).rejects.toThrow("refused");
    await expect(next).resolves.toBe("made");
    expect(lanes.counts).toEqual({ bulk: 0, status: 0, waiting: 0 });
  });

  it("lets thousands of bulk writes through with the queue compacted", async () => {
    const lanes = new WriteLanes({ alone: 2, beside: 1 });
    let done = 0;
    await Promise.all(
      Array.from({ length: 5000 }, () =>
        lanes.bulk(async () => {
          await Promise.resolve();
          done++;
        }),
      ),
    );
    expect(done).toBe(5000);
    expect(lanes.counts).toEqual({ bulk: 0, status: 0, waiting: 0 });
  });
});
