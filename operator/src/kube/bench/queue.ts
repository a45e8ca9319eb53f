// Work queue figures: add → reconcile-start latency when idle, and throughput of no-op
// reconciles under a backlog.  npx tsx operator/src/kube/bench/queue.ts
import { KeyedWorkQueue } from "../workqueue.js";

const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const us = (ms: number) => Math.round(ms * 1000);

// Idle: one add at a time, the next after the previous reconcile ran.
{
  const waits: number[] = [];
  const queue = new KeyedWorkQueue({ hooks: { onStart: (_k, w) => waits.push(w) } });
  let done!: () => void;
  queue.run(async () => done(), 8);
  for (let i = 0; i < 20_000; i++) {
    await new Promise<void>((r) => {
      done = r;
      queue.add(`ns/k${i % 100}`);
    });
  }
  await queue.shutdown();
  waits.sort((a, b) => a - b);
  console.log(
    JSON.stringify({ idleAddToStartUs: { p50: us(q(waits, 0.5)), p99: us(q(waits, 0.99)), max: us(q(waits, 1)) } }),
  );
}

// Backlog: 100k distinct keys added at once, 16 workers, reconciles that yield once.
{
  const queue = new KeyedWorkQueue();
  const n = 100_000;
  let count = 0;
  let finish!: () => void;
  const all = new Promise<void>((r) => (finish = r));
  const t0 = performance.now();
  queue.run(async () => {
    await Promise.resolve();
    if (++count === n) finish();
  }, 16);
  for (let i = 0; i < n; i++) queue.add(`ns/k${i}`);
  await all;
  const secs = (performance.now() - t0) / 1000;
  await queue.shutdown();
  console.log(JSON.stringify({ backlogReconcilesPerSecond: Math.round(n / secs) }));
}
