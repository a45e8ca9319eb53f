// Bookkeeping of the attempts this pod runs: their state, the per-attempt ordering of what the
// worker says about them, child sequence numbers, and progress coalescing.
import { childName } from "../../../protocol/index.js";

export type AttemptState =
  /** In the worker; counts against capacity. */
  | "running"
  /** The operator asked to cancel it; the worker has not confirmed yet. */
  | "cancelling"
  /** Over in the worker; its outcome is being reported (still listed in heartbeats). */
  | "reporting";

export interface Attempt {
  key: string;
  call: string;
  attempt: number;
  function: string;
  request: string;
  timeoutSeconds: number;
  state: AttemptState;
  startedAt: number;
  timer?: NodeJS.Timeout;
  seq: SeqFinder;
  metrics: Map<string, number>;
  /** Spill files of its inputs (PROTOCOL.md §4): the worker removes them once read, or we do at the end. */
  spills?: string[];
}

export const attemptKey = (call: string, attempt: number): string => `${call}#${attempt}`;

/**
 * Runs tasks of one key one after another, in submission order; keys are independent. The
 * worker's messages of one attempt are applied in the order received (PROTOCOL.md §1).
 */
export class Serial {
  private readonly tails = new Map<string, Promise<void>>();

  constructor(private readonly onError: (key: string, e: unknown) => void) {}

  run(key: string, task: () => unknown): Promise<void> {
    const prev = this.tails.get(key);
    const next = (prev ? prev.then(task) : Promise.resolve().then(task)).then(
      () => undefined,
      (e: unknown) => this.onError(key, e),
    );
    this.tails.set(key, next);
    void next.then(() => {
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
    return next;
  }

  /** Resolves when every task submitted so far has run. */
  async idle(): Promise<void> {
    while (this.tails.size) await Promise.all([...this.tails.values()]);
  }

  get size(): number {
    return this.tails.size;
  }
}

/**
 * The worker names children (PROTOCOL.md §7) but does not send their sequence numbers, which the
 * operator checks: find `seq` with child(parent, seq) == id. Ids come nearly in order, so this
 * hashes each candidate about once.
 */
export class SeqFinder {
  private readonly ahead = new Map<string, number>();
  private next = 0;

  constructor(
    private readonly request: string,
    private readonly parent: string,
    private readonly reach = 100_000,
  ) {}

  find(id: string): number | undefined {
    const limit = this.next + this.reach;
    while (!this.ahead.has(id) && this.next < limit) {
      this.ahead.set(childName(this.request, this.parent, this.next), this.next);
      this.next++;
    }
    const seq = this.ahead.get(id);
    if (seq !== undefined) this.ahead.delete(id);
    return seq;
  }
}

/** The request id of a call: the root is named by it; a child is "<request>-<16 chars>". */
export function requestOf(call: string): string {
  return /-[a-z2-7]{16}$/.test(call) ? call.slice(0, -17) : call;
}

/**
 * At most one progress report per call per interval; the last update wins. The first update goes
 * out at once, so a call that reports rarely is never delayed.
 */
export class ProgressGate<T> {
  private readonly calls = new Map<string, { last: number; pending?: T; timer?: NodeJS.Timeout }>();

  constructor(
    private readonly intervalMs: number,
    private readonly send: (call: string, body: T) => void,
    private readonly now = Date.now,
  ) {}

  push(call: string, body: T): void {
    const s = this.calls.get(call) ?? { last: -Infinity };
    this.calls.set(call, s);
    const wait = s.last + this.intervalMs - this.now();
    if (wait <= 0 && !s.timer) {
      s.last = this.now();
      this.send(call, body);
      return;
    }
    s.pending = body;
    s.timer ??= setTimeout(
      () => {
        s.timer = undefined;
        if (s.pending !== undefined) {
          const b = s.pending;
          s.pending = undefined;
          s.last = this.now();
          this.send(call, b);
        }
      },
      Math.max(0, wait),
    );
  }

  /** The call is over: send what is pending now, then forget it. */
  finish(call: string): void {
    const s = this.calls.get(call);
    if (!s) return;
    this.calls.delete(call);
    if (s.timer) clearTimeout(s.timer);
    if (s.pending !== undefined) this.send(call, s.pending);
  }
}
