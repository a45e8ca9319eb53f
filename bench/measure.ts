// One measured phase of the bench: CPU of each process group, the operator's event-loop delay, the
// FunctionCall writes the apiserver counted, and any other operator seen meanwhile (an e2e test
// acting on the bench's calls too: the phase's figures are then not valid).
import { loadavg } from "node:os";
import { apiserverCallWrites, childOperatorPid, eventLoopLag, otherOperators } from "./cluster.js";
import { type CpuUse, type ProcessGroups, cpuBetween, sampleCpu } from "./stats.js";

export interface PhaseFigures {
  cpu: CpuUse;
  loadavg: number[];
  operatorEventLoopLag: { p99Ms: number; maxMs: number };
  otherOperators: number[];
  /** FunctionCall writes the apiserver counted during the phase (all clients). */
  functionCallWrites: { creates: number; statusPatches: number; other: number };
}

export type Phases = Record<string, PhaseFigures>;

export class Measurer {
  /** Other operators seen while the bench ran. */
  readonly intruders = new Set<number>();
  /** Other operators seen while the current phase ran. */
  private current = new Set<number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly groups: ProcessGroups,
    private readonly httpPort: string,
  ) {
    this.timer = setInterval(() => this.watch(), 1000);
  }

  private watch(): void {
    const mine = childOperatorPid();
    for (const pid of otherOperators())
      if (pid !== mine) {
        this.intruders.add(pid);
        this.current.add(pid);
      }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Runs `fn` as phase `name`, recording its figures in `phases` (added to what an earlier part of the phase recorded). */
  async measure<T>(phases: Phases, name: string, fn: () => Promise<T>): Promise<T> {
    this.current = new Set(otherOperators().filter((pid) => pid !== childOperatorPid()));
    const w0 = await apiserverCallWrites();
    await eventLoopLag(this.httpPort);
    const a = sampleCpu(this.groups);
    const out = await fn();
    const cpu = cpuBetween(a, sampleCpu(this.groups));
    const lag = await eventLoopLag(this.httpPort);
    const w1 = await apiserverCallWrites();
    const part: PhaseFigures = {
      cpu,
      loadavg: loadavg().map((x) => Number(x.toFixed(2))),
      operatorEventLoopLag: lag,
      otherOperators: [...this.current],
      functionCallWrites: {
        creates: w1.creates - w0.creates,
        statusPatches: w1.statusPatches - w0.statusPatches,
        other: w1.otherWrites - w0.otherWrites,
      },
    };
    const earlier = phases[name];
    phases[name] = earlier ? mergePhase(earlier, part) : part;
    console.error(`${name}: done in ${cpu.wallSeconds} s`);
    return out;
  }
}

/** One phase measured in parts (the chain's blocks): times and writes add up, CPU is time-weighted. */
export function mergePhase(a: PhaseFigures, b: PhaseFigures): PhaseFigures {
  const wa = a.cpu.wallSeconds;
  const wb = b.cpu.wallSeconds;
  const wall = wa + wb;
  const avg = (x: number, y: number) => (wall > 0 ? Math.round(((x * wa + y * wb) / wall) * 100) / 100 : 0);
  const groups = new Set([...Object.keys(a.cpu.groupCores), ...Object.keys(b.cpu.groupCores)]);
  return {
    cpu: {
      wallSeconds: Math.round(wall * 100) / 100,
      machineCores: avg(a.cpu.machineCores, b.cpu.machineCores),
      groupCores: Object.fromEntries(
        [...groups].map((g) => [g, avg(a.cpu.groupCores[g] ?? 0, b.cpu.groupCores[g] ?? 0)]),
      ),
    },
    loadavg: b.loadavg,
    operatorEventLoopLag: {
      p99Ms: Math.max(a.operatorEventLoopLag.p99Ms, b.operatorEventLoopLag.p99Ms),
      maxMs: Math.max(a.operatorEventLoopLag.maxMs, b.operatorEventLoopLag.maxMs),
    },
    otherOperators: [...new Set([...a.otherOperators, ...b.otherOperators])],
    functionCallWrites: {
      creates: a.functionCallWrites.creates + b.functionCallWrites.creates,
      statusPatches: a.functionCallWrites.statusPatches + b.functionCallWrites.statusPatches,
      other: a.functionCallWrites.other + b.functionCallWrites.other,
    },
  };
}
