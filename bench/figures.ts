// The figures of one operator's phases (the JSON's chain, dependentDispatchGap and map sections,
// against the raw-write baselines), and the figures `--compare` sets side by side.
import type { OperatorRun } from "./operator-phases.js";
import type { RawWrites } from "./raw-writes.js";
import { type Summary, summarize } from "./stats.js";

const r2 = (x: number) => Math.round(x * 100) / 100;

export interface RawBaselines {
  before: RawWrites;
  after: RawWrites;
  /** Mean per call of before and after (ms). */
  perCallMs: number;
  map: { calls: number; concurrency: number; callsPerSecond: number };
}

/** FunctionCall writes per call of a phase, as the apiserver counted them (3 on the common path). */
function writesPerCall(run: OperatorRun, phase: string, calls: number): number {
  const w = run.phases[phase]?.functionCallWrites;
  return w ? Math.round(((w.creates + w.statusPatches) / calls) * 1000) / 1000 : NaN;
}

export function operatorSections(run: OperatorRun, raw: RawBaselines) {
  const { chain, dependents: dep, map } = run;
  const chainOverheadMs = (chain.loopMs - chain.pureMs) / chain.calls;
  const mapCallsPerSecond = map.items / (map.loopMs / 1000);
  return {
    chain: {
      calls: chain.calls,
      loopMs: Math.round(chain.loopMs),
      purePythonMs: Math.round(chain.pureMs * 1000) / 1000,
      perCallOverheadMs: r2(chainOverheadMs),
      // Against the raw blocks run between the chain's blocks when there are any (same load).
      ratioToRawWrites: r2(chainOverheadMs / (chain.rawInterleaved?.perCallMeanMs ?? raw.perCallMs)),
      rawPerCallMs: chain.rawInterleaved?.perCallMeanMs ?? r2(raw.perCallMs),
      rawInterleaved: chain.rawInterleaved,
      target: "<= 1.5x raw writes",
      // A step is created assigned (its create carries the assignment): it needs two of the three
      // writes. The same overhead against those two alone says what the rest of the path costs.
      ratioToRawCreateAndSucceeded: chain.rawInterleaved
        ? r2(chainOverheadMs / chain.rawInterleaved.createAndSucceededMeanMs)
        : undefined,
      writesPerCall: writesPerCall(run, "chain", chain.calls + (chain.blocks ?? 1)),
      // Running: startTime → completionTime of a call; gap: completionTime → the next call's startTime.
      runningMs: chain.runningMs,
      gapToNextStartMs: chain.gapToNextStartMs,
    },
    dependentDispatchGap: {
      links: dep.gaps.length,
      between: "status.completionTime of link k-1 → status.startTime of link k (operator clock, ms)",
      gapMs: summarize(dep.gaps),
      // From the operator's /metrics: the part of the gap a ready link waited in its queue for a container.
      readyToDispatchMeanMs: dep.readyToDispatchMeanMs,
      dispatchedCalls: dep.dispatchedCalls,
      largestGaps: dep.largestGaps,
      succeededPatchP50Ms: raw.after.succeededPatchMs.p50,
      targets: { p50Ms: 10, p99Ms: 20 },
      // The time between steps as the functions see it: the result's report, the writes before
      // the next link may start (its input's Succeeded, its Running), the lease answer, the worker.
      inPods: {
        between: "link k-1's return → link k's first line (wall clock in the pods, ms)",
        gapMs: summarize(dep.inPods),
        // The two writes alone, as a plain client makes them (same run): one after the other, the
        // path before a link's Running write went out beside its input's Succeeded write.
        rawSucceededPatchMs: pick(raw.after.succeededPatchMs),
        rawRunningPatchMs: pick(raw.after.runningPatchMs),
      },
      writesPerCall: writesPerCall(run, "dependents", dep.calls + 1),
      loopMs: dep.loopMs,
    },
    map: {
      items: map.items,
      rootMapMs: Math.round(map.loopMs),
      callsPerSecond: Math.round(mapCallsPerSecond),
      itemsTimed: map.itemsTimed,
      itemWindowSeconds: map.itemWindowSeconds,
      callsPerSecondItemWindow: Math.round(map.items / map.itemWindowSeconds),
      target: ">= 3x the raw ceiling, <= 0.05 writes per item",
      writesPerCall: writesPerCall(run, "map", map.items + 2),
      // The same three writes per item by a plain client, 64 items in flight: the ceiling here.
      rawWritesCeiling: raw.map,
      ratioToRawCeiling: r2(mapCallsPerSecond / raw.map.callsPerSecond),
      timeline: map.timeline,
    },
  };
}

const pick = (s: Summary) => ({ p50: s.p50, p99: s.p99 });

export type OperatorSections = ReturnType<typeof operatorSections>;

/**
 * The figures `--compare` reports, in table order: key, label, what is better, and whether a worse
 * ratio is flagged (not for cores: CPU seconds / wall seconds rises when a phase gets faster).
 */
export const COMPARED: { key: string; label: string; better: "lower" | "higher"; flag?: false }[] = [
  { key: "chainOverheadMs", label: "chain overhead per call, ms", better: "lower" },
  { key: "chainRatioToRawWrites", label: "chain overhead / raw writes per call", better: "lower" },
  { key: "dependentGapP50Ms", label: "dependent dispatch gap p50, ms", better: "lower" },
  { key: "dependentGapP99Ms", label: "dependent dispatch gap p99, ms", better: "lower" },
  { key: "dependentInPodsP50Ms", label: "dependent gap in the pods p50, ms", better: "lower" },
  { key: "dependentInPodsP99Ms", label: "dependent gap in the pods p99, ms", better: "lower" },
  { key: "mapCallsPerSecond", label: "map calls/s", better: "higher" },
  { key: "writesPerCallChain", label: "writes per call, chain", better: "lower" },
  { key: "writesPerCallDependents", label: "writes per call, dependents", better: "lower" },
  { key: "writesPerCallMap", label: "writes per call, map", better: "lower" },
  { key: "operatorCoresWarmup", label: "operator CPU cores, warmup", better: "lower", flag: false },
  { key: "operatorCoresChain", label: "operator CPU cores, chain", better: "lower", flag: false },
  { key: "operatorCoresDependents", label: "operator CPU cores, dependents", better: "lower", flag: false },
  { key: "operatorCoresMap", label: "operator CPU cores, map", better: "lower", flag: false },
];

export type Figures = Record<string, number>;

export function comparedFigures(s: OperatorSections, run: OperatorRun): Figures {
  const cores = (phase: string) => run.phases[phase]?.cpu.groupCores.operator ?? NaN;
  return {
    chainOverheadMs: s.chain.perCallOverheadMs,
    chainRatioToRawWrites: s.chain.ratioToRawWrites,
    dependentGapP50Ms: s.dependentDispatchGap.gapMs.p50,
    dependentGapP99Ms: s.dependentDispatchGap.gapMs.p99,
    dependentInPodsP50Ms: s.dependentDispatchGap.inPods.gapMs.p50,
    dependentInPodsP99Ms: s.dependentDispatchGap.inPods.gapMs.p99,
    mapCallsPerSecond: s.map.callsPerSecond,
    writesPerCallChain: s.chain.writesPerCall,
    writesPerCallDependents: s.dependentDispatchGap.writesPerCall,
    writesPerCallMap: s.map.writesPerCall,
    operatorCoresWarmup: cores("warmup"),
    operatorCoresChain: cores("chain"),
    operatorCoresDependents: cores("dependents"),
    operatorCoresMap: cores("map"),
  };
}

/** current / baseline of each figure (NaN when the baseline is 0 or missing). */
export function ratios(baseline: Figures, current: Figures): Figures {
  const out: Figures = {};
  for (const { key } of COMPARED) {
    const b = baseline[key] ?? NaN;
    out[key] = b === 0 ? NaN : Math.round(((current[key] ?? NaN) / b) * 1000) / 1000;
  }
  return out;
}
