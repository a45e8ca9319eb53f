// Per-key deadlines behind one timer, as client-go's delaying queue keeps them: a min-heap of
// (deadline, key) and each key's current deadline. A Timeout per key cost ~250 bytes (the
// Timeout, its closure and context, a map entry): 100,000 waiting calls held ~25 MiB.

const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** Deadlines due within this many ms of now fire together (timers have ms granularity). */
const SLACK_MS = 1;

export class Deadlines<K> {
  private readonly due = new Map<K, number>();
  // The heap in two arrays (a packed array of doubles and one of keys): no object per entry.
  private readonly heapAt: number[] = [];
  private readonly heapKey: K[] = [];
  /** Heap entries whose key has since moved or dropped its deadline. */
  private stale = 0;
  private timer: NodeJS.Timeout | undefined;
  private armedAt = Infinity;

  constructor(
    private readonly now: () => number,
    private readonly fire: (key: K) => void,
  ) {}

  get size(): number {
    return this.due.size;
  }

  /** Sets the key's deadline to `at` unless an earlier one is set. */
  setEarliest(key: K, at: number): void {
    const cur = this.due.get(key);
    if (cur !== undefined) {
      if (cur <= at) return;
      this.stale++;
    }
    this.due.set(key, at);
    this.push(at, key);
    if (at < this.armedAt) this.arm();
  }

  delete(key: K): void {
    if (this.due.delete(key)) this.stale++;
    if (this.stale > 1024 && this.stale > this.due.size) this.rebuild();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
    this.due.clear();
    this.heapAt.length = 0;
    this.heapKey.length = 0;
    this.stale = 0;
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = Infinity;
    while (this.heapAt.length > 0 && this.due.get(this.heapKey[0]!) !== this.heapAt[0]) {
      this.pop();
      this.stale--;
    }
    if (this.heapAt.length === 0) return;
    const at = this.heapAt[0]!;
    this.armedAt = at;
    this.timer = setTimeout(() => this.expire(), Math.min(MAX_TIMEOUT_MS, Math.max(0, at - this.now())));
    this.timer.unref?.();
  }

  private expire(): void {
    this.timer = undefined;
    this.armedAt = Infinity;
    const until = this.now() + SLACK_MS;
    const fired: K[] = [];
    while (this.heapAt.length > 0 && this.heapAt[0]! <= until) {
      const at = this.heapAt[0]!;
      const key = this.heapKey[0]!;
      this.pop();
      if (this.due.get(key) === at) {
        this.due.delete(key);
        fired.push(key);
      } else this.stale--;
    }
    this.arm();
    for (const k of fired) this.fire(k);
  }

  /** The heap again from the live deadlines only (stale entries were over half of it). */
  private rebuild(): void {
    this.heapAt.length = 0;
    this.heapKey.length = 0;
    for (const [k, at] of this.due) {
      this.heapAt.push(at);
      this.heapKey.push(k);
    }
    for (let i = (this.heapAt.length >> 1) - 1; i >= 0; i--) this.down(i);
    this.stale = 0;
    if (this.heapAt.length === 0 || this.heapAt[0] !== this.armedAt) this.arm();
  }

  private push(at: number, key: K): void {
    this.heapAt.push(at);
    this.heapKey.push(key);
    let i = this.heapAt.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.heapAt[p]! <= at) break;
      this.move(p, i);
      i = p;
    }
    this.heapAt[i] = at;
    this.heapKey[i] = key;
  }

  private pop(): void {
    const lastAt = this.heapAt.pop()!;
    const lastKey = this.heapKey.pop()!;
    if (this.heapAt.length === 0) return;
    this.heapAt[0] = lastAt;
    this.heapKey[0] = lastKey;
    this.down(0);
  }

  private down(i: number): void {
    const n = this.heapAt.length;
    const at = this.heapAt[i]!;
    const key = this.heapKey[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.heapAt[c + 1]! < this.heapAt[c]!) c++;
      if (this.heapAt[c]! >= at) break;
      this.move(c, i);
      i = c;
    }
    this.heapAt[i] = at;
    this.heapKey[i] = key;
  }

  private move(from: number, to: number): void {
    this.heapAt[to] = this.heapAt[from]!;
    this.heapKey[to] = this.heapKey[from]!;
  }
}
