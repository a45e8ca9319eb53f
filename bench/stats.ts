// Small figures helpers of the bench: quantiles and CPU time read from /proc (Linux).
import { readFileSync, readdirSync } from "node:fs";

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

const round = (x: number) => Math.round(x * 100) / 100;

/** Nearest-rank quantiles of `xs` (ms), rounded to 0.01. */
export function summarize(xs: number[]): Summary {
  if (xs.length === 0) return { n: 0, p50: NaN, p99: NaN, mean: NaN, min: NaN, max: NaN };
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(s.length * p) - 1))]!;
  return {
    n: s.length,
    p50: round(q(0.5)),
    p99: round(q(0.99)),
    mean: round(s.reduce((a, b) => a + b, 0) / s.length),
    min: round(s[0]!),
    max: round(s[s.length - 1]!),
  };
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

/** user+system CPU seconds of one process, 0 when it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND; // fields 14, 15 (utime, stime)
  } catch {
    return 0;
  }
}

function allPids(): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number);
}

/** Groups of processes whose CPU time the bench samples: name → predicate on the command line. */
export type ProcessGroups = Record<string, (cmd: string, pid: number) => boolean>;

export interface CpuSample {
  at: number;
  /** Busy CPU seconds of the whole machine (all cores). */
  machineBusy: number;
  groups: Record<string, number>;
}

export function sampleCpu(groups: ProcessGroups): CpuSample {
  const at = performance.now();
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  const total = line.slice(0, 8).reduce((a, b) => a + b, 0);
  const out: Record<string, number> = Object.fromEntries(Object.keys(groups).map((k) => [k, 0]));
  for (const pid of allPids()) {
    const cmd = cmdline(pid);
    if (!cmd) continue;
    for (const [name, match] of Object.entries(groups)) if (match(cmd, pid)) out[name]! += cpuSeconds(pid);
  }
  return { at, machineBusy: (total - idle) / TICKS_PER_SECOND, groups: out };
}

export interface CpuUse {
  wallSeconds: number;
  /** Cores kept busy on average, whole machine. */
  machineCores: number;
  /** Cores used on average by each group over the interval (processes that ended inside it are missed). */
  groupCores: Record<string, number>;
}

export function cpuBetween(a: CpuSample, b: CpuSample): CpuUse {
  const wall = (b.at - a.at) / 1000;
  const per = (x: number) => Math.round((x / wall) * 100) / 100;
  return {
    wallSeconds: Math.round(wall * 100) / 100,
    machineCores: per(b.machineBusy - a.machineBusy),
    groupCores: Object.fromEntries(Object.keys(b.groups).map((k) => [k, per(b.groups[k]! - (a.groups[k] ?? 0))])),
  };
}
