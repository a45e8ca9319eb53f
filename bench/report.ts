// The bench's printed table: each figure with its target, the baseline it is compared with, and
// where the CPU went while it was measured (what limits it).
import type { RawWrites } from "./raw-writes.js";
import type { CpuUse, Summary } from "./stats.js";
import { type TailSections, tailRows } from "./tail-chain.js";

type Row = [string, string, string, string];

export type PhasesFigures = Record<
  string,
  {
    cpu: CpuUse;
    loadavg: number[];
    operatorEventLoopLag: { p99Ms: number; maxMs: number };
    otherOperators: number[];
    functionCallWrites: { creates: number; statusPatches: number; other: number };
  }
>;

export interface BenchResults {
  machine: { cpus: number; loadavgAtStart: number[]; loadavgAtEnd: number[] };
  otherOperatorsDuringRun: number[];
  rawWrites: { before: RawWrites; after: RawWrites; perCallMeanMs: number };
  chain: {
    calls: number;
    loopMs: number;
    perCallOverheadMs: number;
    ratioToRawWrites: number;
    rawPerCallMs: number;
    rawInterleaved?: {
      calls: number;
      perCallMeanMs: number;
      blockMeansMs: number[];
      createAndSucceededMeanMs?: number;
    };
    ratioToRawCreateAndSucceeded?: number;
    writesPerCall?: number;
    runningMs: Summary;
    gapToNextStartMs: Summary;
  };
  dependentDispatchGap: {
    links: number;
    between: string;
    gapMs: Summary;
    readyToDispatchMeanMs: number;
    succeededPatchP50Ms: number;
    inPods: {
      gapMs: Summary;
      rawSucceededPatchMs: { p50: number; p99: number };
      rawRunningPatchMs: { p50: number; p99: number };
    };
  };
  map: {
    items: number;
    rootMapMs: number;
    callsPerSecond: number;
    callsPerSecondItemWindow: number;
    writesPerCall: number;
    rawWritesCeiling: { callsPerSecond: number; concurrency: number };
    ratioToRawCeiling: number;
  };
  phases: PhasesFigures;
  /** The tail chains (absent when the run had none). */
  tail?: TailSections;
}

const pad = (s: string, n: number) => s.padEnd(n);
const ok = (pass: boolean) => (pass ? "met" : "NOT met");

export function printReport(r: BenchResults): void {
  const raw = r.rawWrites;
  const g = r.dependentDispatchGap.gapMs;
  const p = r.dependentDispatchGap.inPods;
  const rows: Row[] = [
    [
      "raw writes per call (create+Running+Succeeded), before",
      `p50 ${raw.before.perCallMs.p50} ms, mean ${raw.before.perCallMs.mean} ms`,
      "baseline",
      `create p50 ${raw.before.createMs.p50}, patch p50 ${raw.before.runningPatchMs.p50}/${raw.before.succeededPatchMs.p50}`,
    ],
    [
      "raw writes per call, after",
      `p50 ${raw.after.perCallMs.p50} ms, mean ${raw.after.perCallMs.mean} ms`,
      "baseline",
      `create p50 ${raw.after.createMs.p50}, patch p50 ${raw.after.runningPatchMs.p50}/${raw.after.succeededPatchMs.p50}`,
    ],
    [
      `sequential chain (${r.chain.calls} calls) overhead per call`,
      `${r.chain.perCallOverheadMs} ms = ${r.chain.ratioToRawWrites}x raw`,
      `<= 1.5x: ${ok(r.chain.ratioToRawWrites <= 1.5)}`,
      `raw ${r.chain.rawPerCallMs} ms/call${r.chain.rawInterleaved ? ` (${r.chain.rawInterleaved.blockMeansMs.length} raw blocks between the chain's: ${r.chain.rawInterleaved.blockMeansMs.join(", ")})` : ""}; ` +
        `running p50 ${r.chain.runningMs.p50} ms, to next start p50 ${r.chain.gapToNextStartMs.p50} ms; ` +
        `${r.chain.writesPerCall} writes per call` +
        (r.chain.ratioToRawCreateAndSucceeded === undefined
          ? ""
          : `, ${r.chain.ratioToRawCreateAndSucceeded}x the raw create+Succeeded alone (${r.chain.rawInterleaved?.createAndSucceededMeanMs} ms)`),
    ],
    [
      `dependent dispatch gap (${r.dependentDispatchGap.links} links)`,
      `p50 ${g.p50} ms, p99 ${g.p99} ms`,
      `p50<=10 ${ok(g.p50 <= 10)}, p99<=20 ${ok(g.p99 <= 20)}`,
      `mean ${g.mean}, max ${g.max}; input's completionTime → link's startTime (both stamped before their writes); ` +
        `ready→dispatch mean ${r.dependentDispatchGap.readyToDispatchMeanMs} ms`,
    ],
    [
      `  the same gap in the pods (return → next first line)`,
      `p50 ${p.gapMs.p50} ms, p99 ${p.gapMs.p99} ms`,
      "(no target)",
      `mean ${p.gapMs.mean}, max ${p.gapMs.max}; holds the writes: raw Succeeded p50/p99 ` +
        `${p.rawSucceededPatchMs.p50}/${p.rawSucceededPatchMs.p99} ms, raw Running ${p.rawRunningPatchMs.p50}/${p.rawRunningPatchMs.p99} ms`,
    ],
    [
      `map of ${r.map.items} items`,
      `${r.map.callsPerSecond} items/s, ${r.map.writesPerCall} writes/item`,
      `>= 3x raw: ${ok(r.map.ratioToRawCeiling >= 3)}, <= 0.05 writes: ${ok(r.map.writesPerCall <= 0.05)}`,
      `root saw ${r.map.rootMapMs} ms; items' first start→last end: ${r.map.callsPerSecondItemWindow} items/s`,
    ],
  ];
  rows.push([
    `raw writes of ${r.map.items} calls, ${r.map.rawWritesCeiling.concurrency} in flight`,
    `${r.map.rawWritesCeiling.callsPerSecond} calls/s`,
    "baseline",
    `map reaches ${r.map.ratioToRawCeiling}x of it`,
  ]);
  if (r.tail) rows.push(...tailRows(r.tail));
  printHeader(r);
  printRows(rows);
  printPhases(r.phases);
}

/** The machine's line and, when another operator ran meanwhile, the warning. */
export function printHeader(r: Pick<BenchResults, "machine" | "otherOperatorsDuringRun">): void {
  const load = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(" ");
  console.log(
    `\nTrellis bench (${r.machine.cpus} CPUs, load average ${load(r.machine.loadavgAtStart)} at start, ` +
      `${load(r.machine.loadavgAtEnd)} at end)\n`,
  );
  if (r.otherOperatorsDuringRun.length > 0) {
    console.log(
      `WARNING: other operators (pids ${r.otherOperatorsDuringRun.join(", ")}) ran during the bench and acted ` +
        `on its calls too: figures of the phases marked INVALID below are not valid.\n`,
    );
  }
}

/** The figures' table, columns padded. */
export function printRows(rows: Row[]): void {
  const w = [0, 1, 2].map((i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) console.log(`${pad(row[0], w[0]!)}  ${pad(row[1], w[1]!)}  ${pad(row[2], w[2]!)}  ${row[3]}`);
}

/** Where the CPU went in each phase, and the FunctionCall writes the apiserver counted. */
export function printPhases(phases: PhasesFigures): void {
  console.log(
    `\nCPU while measuring (cores busy on average; machine = all processes; the operator's event-loop ` +
      `delay includes prom-client's 10 ms sampling):`,
  );
  const names = Object.keys(Object.values(phases)[0]?.cpu.groupCores ?? {});
  console.log(
    `${pad("phase", 16)}${pad("wall s", 8)}${pad("machine", 9)}${names.map((n) => pad(n, 10)).join("")}` +
      `${pad("op loop lag p99/max ms", 24)}loadavg`,
  );
  for (const [phase, p] of Object.entries(phases)) {
    console.log(
      `${pad(phase, 16)}${pad(String(p.cpu.wallSeconds), 8)}${pad(String(p.cpu.machineCores), 9)}` +
        `${names.map((n) => pad(String(p.cpu.groupCores[n]), 10)).join("")}` +
        `${pad(`${p.operatorEventLoopLag.p99Ms}/${p.operatorEventLoopLag.maxMs}`, 24)}${p.loadavg.join(" ")}` +
        (p.otherOperators.length > 0 ? `  INVALID: other operator ${p.otherOperators.join(", ")}` : ""),
    );
  }
  console.log(
    `\nFunctionCall writes the apiserver counted per phase (all clients; creates / status patches / other writes):`,
  );
  for (const [phase, p] of Object.entries(phases)) {
    const w = p.functionCallWrites;
    console.log(`${pad(phase, 16)}${w.creates} / ${w.statusPatches} / ${w.other}`);
  }
}
