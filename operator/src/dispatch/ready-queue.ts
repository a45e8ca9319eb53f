// One ready queue per (namespace, application, function): FIFO of due calls plus a heap of calls
// waiting for their retryAfter. Removal is lazy (a name stays in the arrays until popped).
export class ReadyQueue {
  private fifo: string[] = [];
  private head = 0;
  private readonly heap: { at: number; name: string }[] = [];
  /** name → time it became ready (for queuedTime). */
  readonly members = new Map<string, number>();

  constructor(
    readonly namespace: string,
    readonly application: string,
    readonly fn: string,
  ) {}

  get size(): number {
    return this.members.size;
  }

  has(name: string): boolean {
    return this.members.has(name);
  }

  add(name: string, now: number, notBefore?: number): void {
    if (this.members.has(name)) return;
    this.members.set(name, now);
    if (notBefore !== undefined && notBefore > now) this.push({ at: notBefore, name });
    else this.fifo.push(name);
  }

  remove(name: string): boolean {
    return this.members.delete(name);
  }

  /** Earliest retryAfter still waiting, if any. */
  nextDue(): number | undefined {
    return this.heap[0]?.at;
  }

  /** Up to `n` due calls, oldest first, removed from the queue, with the time each became ready. */
  take(n: number, now: number): { name: string; readyAt: number }[] {
    while (this.heap.length > 0 && this.heap[0]!.at <= now) this.fifo.push(this.pop().name);
    const out: { name: string; readyAt: number }[] = [];
    while (out.length < n && this.head < this.fifo.length) {
      const name = this.fifo[this.head++]!;
      const at = this.members.get(name);
      if (at === undefined) continue;
      this.members.delete(name);
      out.push({ name, readyAt: at });
    }
    if (this.head > 1024 && this.head * 2 > this.fifo.length) {
      this.fifo = this.fifo.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  /** Whether a call is due now (cheap check before waking a lease). */
  hasDue(now: number): boolean {
    while (this.head < this.fifo.length && !this.members.has(this.fifo[this.head]!)) this.head++;
    if (this.head < this.fifo.length) return true;
    return this.heap.length > 0 && this.heap[0]!.at <= now;
  }

  private push(e: { at: number; name: string }): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= h[i]!.at) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  private pop(): { at: number; name: string } {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.at < h[m]!.at) m = l;
        if (r < h.length && h[r]!.at < h[m]!.at) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}
