// The operator phases of the bench, against one operator in its own namespace: deploy the apps
// (warm containers), warmup, sequential chain, dependent dispatch gap, map. Returns what the
// phases measured; figures.ts turns it into the report's figures (with the raw-write baselines).
import type { KubeClient } from "../operator/src/kube/client.js";
import type { KubeObjectWriter } from "../operator/src/kube/writer.js";
import { CHAIN_SOURCE, DEPENDENT_SOURCE, MAP_SOURCE } from "./apps.js";
import type { BenchOperator } from "./bench-operator.js";
import { type Call, childrenOf, createRequest, deployInlineApp, dispatchLatency, ms, waitFinished } from "./cluster.js";
import type { Measurer, Phases } from "./measure.js";
import type { RawWrites } from "./raw-writes.js";
import { type Summary, summarize } from "./stats.js";

export interface PhaseContext {
  client: KubeClient;
  writer: KubeObjectWriter;
  measurer: Measurer;
  httpPort: string;
  sizes: { chain: number; dependents: number; map: number };
  /** The raw writes of `n` calls one after another, run between the chain's blocks (ABAB). */
  rawBlock?: (n: number, tag: string) => Promise<RawWrites>;
}

export interface OperatorRun {
  label: string;
  namespace: string;
  /** The phases' CPU, event-loop delay and write figures (warmup, chain, dependents, map). */
  phases: Phases;
  chain: {
    calls: number;
    /** Requests the chain ran as (blocks interleaved with raw blocks). */
    blocks: number;
    loopMs: number;
    pureMs: number;
    runningMs: Summary;
    gapToNextStartMs: Summary;
    /** Raw blocks before, between and after the chain's blocks: per call, mean of every block's calls. */
    rawInterleaved?: {
      calls: number;
      perCallMeanMs: number;
      blockMeansMs: number[];
      /** Of those writes, the create and the Succeeded write only: all a child created assigned needs. */
      createAndSucceededMeanMs: number;
    };
  };
  dependents: {
    calls: number;
    gaps: number[];
    /** Link k-1's return → link k's first line, in the pods (wall clock, ms). */
    inPods: number[];
    largestGaps: { at: string; ms: number }[];
    dispatchedCalls: number;
    readyToDispatchMeanMs: number;
    loopMs: number;
  };
  map: { items: number; loopMs: number; itemsTimed: number; itemWindowSeconds: number; timeline: object };
  operatorLog: string;
}

type Run = (
  app: string,
  n: number,
) => Promise<{ name: string; out: { value: number; loop_s: number; pure_s?: number } }>;

async function deployApps(writer: KubeObjectWriter, namespace: string): Promise<void> {
  // Warm containers: every function keeps its pods (minContainers) and the idle timeout is long.
  const deploy = (name: string, source: string, entrypoint: string, functions: object[]) =>
    deployInlineApp(writer, namespace, { name, entrypoint, source, functions });
  const one = { minContainers: 1, maxContainers: 1, concurrency: 4 };
  await deploy("chain", CHAIN_SOURCE, "chain", [
    { name: "chain", ...one },
    { name: "step", ...one },
  ]);
  await deploy("dependents", DEPENDENT_SOURCE, "dependents", [
    { name: "dependents", ...one },
    { name: "link", ...one },
  ]);
  await deploy("fanout", MAP_SOURCE, "fanout", [
    { name: "fanout", ...one },
    { name: "double", minContainers: 2, maxContainers: 2, concurrency: 64 },
  ]);
}

/**
 * 2. Sequential chain: running (startTime → completionTime) and gap to the next call's start. With
 * a raw block runner it runs as A B A B A B A B A (raw, chain, ..., raw), so the ratio compares
 * the chain with raw writes made under the same load moments apart: the raw figures taken at the
 * bench's start and end differed by up to 50% within one run.
 */
async function chainPhase(ctx: PhaseContext, ns: string, run: Run, measure: Measure): Promise<OperatorRun["chain"]> {
  const n = ctx.sizes.chain;
  const blocks = ctx.rawBlock && n >= 40 ? 4 : 1;
  const gaps: number[] = [];
  const running: number[] = [];
  const raws: RawWrites[] = [];
  let loopMs = 0;
  let pureMs = 0;
  let left = n;
  for (let b = 0; b < blocks; b++) {
    const size = Math.round(left / (blocks - b));
    left -= size;
    if (ctx.rawBlock) raws.push(await ctx.rawBlock(size, `${ns}-chain${b}`)); // one set of names per operator run (--compare runs two)
    const chain = await measure("chain", () => run("chain", size));
    if (chain.out.value !== size) throw new Error(`chain returned ${JSON.stringify(chain.out)}`);
    loopMs += chain.out.loop_s * 1000;
    pureMs += (chain.out.pure_s ?? 0) * 1000;
    const calls = (await childrenOf(ctx.client, ns, chain.name)).sort((a, c) => a.spec.sequence! - c.spec.sequence!);
    calls.forEach((c, i) => {
      running.push(ms(c.status?.completionTime) - ms(c.status?.startTime));
      const next = calls[i + 1];
      if (next) gaps.push(ms(next.status?.startTime) - ms(c.status?.completionTime));
    });
  }
  if (ctx.rawBlock && blocks > 1) raws.push(await ctx.rawBlock(Math.round(n / blocks), `${ns}-chain${blocks}`));
  const rawCalls = raws.reduce((a, r) => a + r.calls, 0);
  return {
    calls: n,
    blocks,
    loopMs,
    pureMs,
    runningMs: summarize(running),
    gapToNextStartMs: summarize(gaps),
    ...(raws.length > 0
      ? {
          rawInterleaved: {
            calls: rawCalls,
            perCallMeanMs:
              Math.round((raws.reduce((a, r) => a + r.perCallMs.mean * r.calls, 0) / rawCalls) * 100) / 100,
            blockMeansMs: raws.map((r) => r.perCallMs.mean),
            createAndSucceededMeanMs:
              Math.round(
                (raws.reduce((a, r) => a + (r.createMs.mean + r.succeededPatchMs.mean) * r.calls, 0) / rawCalls) * 100,
              ) / 100,
          },
        }
      : {}),
  };
}

/** 3. Dependent dispatch gap: link k's input is link k-1 ({call} reference). */
async function dependentsPhase(ctx: PhaseContext, ns: string, run: Run, measure: Measure) {
  const n = ctx.sizes.dependents;
  const queued0 = await dispatchLatency(ctx.httpPort, "link");
  const dep = await measure("dependents", () => run("dependents", n));
  const queued1 = await dispatchLatency(ctx.httpPort, "link");
  const dispatchedCalls = queued1.count - queued0.count;
  const readyToDispatchMeanMs =
    dispatchedCalls > 0 ? Math.round(((queued1.sum - queued0.sum) / dispatchedCalls) * 1e5) / 100 : NaN;
  if (dep.out.value !== n) throw new Error(`dependents returned ${JSON.stringify(dep.out)}`);
  const calls = await childrenOf(ctx.client, ns, dep.name);
  const byName = new Map(calls.map((c) => [c.metadata.name!, c]));
  const gaps: number[] = [];
  const inPods: number[] = [];
  const gapAt: { at: string; ms: number }[] = [];
  const clock = (c: Call, k: "start" | "end"): number => {
    const v = (c.status?.output?.value as Record<string, unknown> | undefined)?.[k];
    if (typeof v !== "number") throw new Error(`dependents: ${c.metadata.name} has no ${k} in its output`);
    return v * 1000;
  };
  for (const c of calls) {
    const input = c.spec.args?.[0]?.call;
    const prev = input ? byName.get(input) : undefined;
    if (!prev) continue;
    gaps.push(ms(c.status?.startTime) - ms(prev.status?.completionTime));
    gapAt.push({ at: prev.status!.completionTime!, ms: gaps[gaps.length - 1]! });
    inPods.push(Math.round((clock(c, "start") - clock(prev, "end")) * 100) / 100);
  }
  gapAt.sort((a, b) => b.ms - a.ms);
  if (gaps.length !== n - 1) throw new Error(`dependents: ${gaps.length} links with an input, expected ${n - 1}`);
  return {
    calls: n,
    gaps,
    inPods,
    largestGaps: gapAt.slice(0, 5),
    dispatchedCalls,
    readyToDispatchMeanMs,
    loopMs: Math.round(dep.out.loop_s * 1000),
  };
}

/** 4. Map throughput, and where the map's time went (items ready, waiting, running). */
async function mapPhase(ctx: PhaseContext, ns: string, run: Run, measure: Measure): Promise<OperatorRun["map"]> {
  const n = ctx.sizes.map;
  const map = await measure("map", () => run("fanout", n));
  if (map.out.value !== n) throw new Error(`map returned ${JSON.stringify(map.out)}`);
  const items = (await childrenOf(ctx.client, ns, map.name)).filter(
    (c: Call) => c.spec.function === "double" && !c.spec.map && c.status?.startTime,
  );
  const itemStarts = items.map((c) => ms(c.status?.startTime));
  const itemEnds = items.map((c) => ms(c.status?.completionTime));
  const itemReady = items.map((c) => ms(c.status?.queuedTime));
  const span = (xs: number[]) => Math.round(Math.max(...xs) - Math.min(...xs));
  return {
    items: n,
    loopMs: map.out.loop_s * 1000,
    itemsTimed: items.length,
    itemWindowSeconds: (Math.max(...itemEnds) - Math.min(...itemStarts)) / 1000,
    timeline: {
      readySpanMs: span(itemReady),
      startSpanMs: span(itemStarts),
      completionSpanMs: span(itemEnds),
      firstReadyToFirstStartMs: Math.min(...itemStarts) - Math.min(...itemReady),
      readyToStartMs: summarize(items.map((_c, i) => itemStarts[i]! - itemReady[i]!)),
      startToCompletionMs: summarize(items.map((_c, i) => itemEnds[i]! - itemStarts[i]!)),
      pods: new Set(items.map((c) => c.status?.pod)).size,
    },
  };
}

type Measure = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

/** Runs warmup, chain, dependents and map against `op` (already started), recording into `phases`. */
export async function runOperatorPhases(ctx: PhaseContext, op: BenchOperator, phases: Phases): Promise<OperatorRun> {
  const ns = op.namespace;
  const measure: Measure = (name, fn) => ctx.measurer.measure(phases, name, fn);
  await deployApps(ctx.writer, ns);
  const run: Run = async (app, n) => {
    const name = await createRequest(ctx.client, ns, app, app, [n]);
    const root = await waitFinished(ctx.client, ns, name, 300_000, op.alive);
    return { name, out: root.status?.output?.value as { value: number; loop_s: number; pure_s?: number } };
  };
  console.error(`${op.label} operator (${op.root}), namespace ${ns}`);
  await measure("warmup", async () => {
    await Promise.all([run("chain", 10), run("dependents", 10), run("fanout", 200)]);
  });
  const chain = await chainPhase(ctx, ns, run, measure);
  const dependents = await dependentsPhase(ctx, ns, run, measure);
  const map = await mapPhase(ctx, ns, run, measure);
  return { label: op.label, namespace: ns, phases, chain, dependents, map, operatorLog: op.logPath };
}
