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

  /** Runs `fn` as phase `name`, recording its figures in `phases`. */
  async measure<T>(phases: Phases, name: string, fn: () => Promise<T>): Promise<T> {
    this.current = new Set(otherOperators().filter((pid) => pid !== childOperatorPid()));
    const w0 = await apiserverCallWrites();
    await eventLoopLag(this.httpPort);
    const a = sampleCpu(this.groups);
    const out = await fn();
    const cpu = cpuBetween(a, sampleCpu(this.groups));
    const lag = await eventLoopLag(this.httpPort);
    const w1 = await apiserverCallWrites();
    phases[name] = {
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
    console.error(`${name}: done in ${cpu.wallSeconds} s`);
    return out;
  }
}
