// Writes a waiting phase (Blocked, Queued, Running for a map/reduce) only for calls that are
// still waiting `delayMs` after they started to: a call dispatched at once never pays that write.
// One timer for all (the delay is the same for every call, so due times are in FIFO order).
import type { Clock } from "../kube/index.js";

export interface MarkTarget {
  key: string;
  phase: "Blocked" | "Queued" | "Running";
}

export class WaitingMarker {
  private readonly due: { at: number; target: MarkTarget }[] = [];
  private head = 0;
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;

  constructor(
    private readonly delayMs: number,
    private readonly clock: Clock,
    /** Writes the phase if the call is still waiting in it; resolves when done. */
    private readonly write: (t: MarkTarget) => Promise<void>,
    // Few at once: these writes are for people watching, and each one in the API server's queue
    // delays the status writes a running graph waits on.
    private readonly maxInFlight = 2,
  ) {}

  schedule(target: MarkTarget): void {
    const id = `${target.key}|${target.phase}`;
    if (this.pending.has(id)) return;
    this.pending.add(id);
    this.due.push({ at: this.clock.now() + this.delayMs, target });
    this.arm();
  }

  private arm(): void {
    if (this.timer || this.head >= this.due.length || this.inFlight >= this.maxInFlight) return;
    const wait = Math.max(0, this.due[this.head]!.at - this.clock.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fire();
    }, wait);
    this.timer.unref?.();
  }

  private fire(): void {
    const now = this.clock.now();
    while (this.head < this.due.length && this.due[this.head]!.at <= now && this.inFlight < this.maxInFlight) {
      const { target } = this.due[this.head++]!;
      this.pending.delete(`${target.key}|${target.phase}`);
      this.inFlight++;
      void this.write(target)
        .catch(() => undefined)
        .finally(() => {
          this.inFlight--;
          this.arm();
        });
    }
    if (this.head > 1024 && this.head * 2 > this.due.length) {
      this.due.splice(0, this.head);
      this.head = 0;
    }
    this.arm();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
