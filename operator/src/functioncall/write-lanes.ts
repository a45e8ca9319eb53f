// Bulk writes (the creates of a large expansion) yield to the status writes a running graph
// waits on. The API server answers writes roughly in arrival order, so a
// Succeeded write sent behind 64 creates waits for all of them: in the bench, a 200-call graph
// created at once put 100–200 ms into the next link's dispatch gap. Bulk writes keep `alone` in
// flight while no status write is, and drop to `beside` while one is.

export interface LaneLimits {
  /** Bulk writes in flight while no status write is. */
  alone: number;
  /** Bulk writes in flight while a status write is. */
  beside: number;
}

const DEFAULT_LANE_LIMITS: LaneLimits = { alone: 16, beside: 2 };

export class WriteLanes {
  private bulkInFlight = 0;
  private statusInFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private head = 0;

  constructor(private readonly limits: LaneLimits = DEFAULT_LANE_LIMITS) {}

  /** A write a graph waits on: sent at once; bulk writes hold back while it is in flight. */
  async status<T>(fn: () => Promise<T>): Promise<T> {
    this.statusInFlight++;
    try {
      return await fn();
    } finally {
      this.statusInFlight--;
      this.release();
    }
  }

  /** A write that may wait its turn (FIFO) behind other bulk writes. */
  async bulk<T>(fn: () => Promise<T>): Promise<T> {
    await this.slot();
    try {
      return await fn();
    } finally {
      this.bulkInFlight--;
      this.release();
    }
  }

  get counts(): { bulk: number; status: number; waiting: number } {
    return { bulk: this.bulkInFlight, status: this.statusInFlight, waiting: this.waiting.length - this.head };
  }

  private limit(): number {
    return this.statusInFlight > 0 ? this.limits.beside : this.limits.alone;
  }

  private slot(): Promise<void> {
    if (this.head === this.waiting.length && this.bulkInFlight < this.limit()) {
      this.bulkInFlight++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Hands free slots to the oldest waiters (the slot is taken here, so no two take the same). */
  private release(): void {
    while (this.head < this.waiting.length && this.bulkInFlight < this.limit()) {
      this.bulkInFlight++;
      this.waiting[this.head++]!();
    }
    if (this.head === this.waiting.length) {
      this.waiting.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
  }
}
