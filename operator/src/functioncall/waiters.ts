// /wait long-polls: resolved the moment the awaited outcome is persisted (notify), or at their
// deadline with whatever finished by then.
import { type Call, type Outcome, callKey, outcomeOf } from "./calls.js";

interface Waiter {
  namespace: string;
  names: string[];
  mode: "any" | "all";
  pending: Set<string>;
  resolve: (o: Outcome[]) => void;
  timer: NodeJS.Timeout | undefined;
}

const gone = (name: string): Outcome => ({
  call: name,
  phase: "Cancelled",
  error: { type: "Cancelled", message: `call ${name} was deleted`, reason: "cancelled" },
});

export class Waiters {
  private readonly byKey = new Map<string, Set<Waiter>>();

  constructor(private readonly lookup: (namespace: string, name: string) => Call | undefined) {}

  /** Outcomes of the finished calls among `names` once `mode` is met or `waitMs` passed. */
  wait(namespace: string, requested: string[], mode: "any" | "all", waitMs: number): Promise<Outcome[]> {
    const names = [...new Set(requested)];
    const pending = new Set(names.filter((n) => !this.finished(namespace, n)));
    const w: Waiter = { namespace, names, mode, pending, resolve: () => undefined, timer: undefined };
    if (this.satisfied(w) || waitMs === 0) return Promise.resolve(this.outcomes(w));
    return new Promise((resolve) => {
      w.resolve = resolve;
      for (const n of pending) {
        const k = callKey(namespace, n);
        let s = this.byKey.get(k);
        if (!s) this.byKey.set(k, (s = new Set()));
        s.add(w);
      }
      w.timer = setTimeout(() => this.settle(w), waitMs);
    });
  }

  /** Whether a wait holds for the call now. */
  has(namespace: string, name: string): boolean {
    return this.byKey.has(callKey(namespace, name));
  }

  /** The call `name` finished (or was deleted). */
  notify(namespace: string, name: string): void {
    const k = callKey(namespace, name);
    const set = this.byKey.get(k);
    if (!set) return;
    this.byKey.delete(k);
    for (const w of set) {
      w.pending.delete(name);
      if (this.satisfied(w)) this.settle(w);
    }
  }

  size(): number {
    return this.byKey.size;
  }

  private finished(namespace: string, name: string): boolean {
    const c = this.lookup(namespace, name);
    return !c || outcomeOf(c) !== undefined;
  }

  private satisfied(w: Waiter): boolean {
    return w.mode === "all" ? w.pending.size === 0 : w.pending.size < w.names.length;
  }

  private settle(w: Waiter): void {
    if (w.timer) clearTimeout(w.timer);
    for (const n of w.pending) {
      const k = callKey(w.namespace, n);
      const s = this.byKey.get(k);
      s?.delete(w);
      if (s?.size === 0) this.byKey.delete(k);
    }
    w.resolve(this.outcomes(w));
  }

  private outcomes(w: Waiter): Outcome[] {
    const out: Outcome[] = [];
    for (const n of w.names) {
      const c = this.lookup(w.namespace, n);
      if (!c) out.push(gone(n));
      else {
        const o = outcomeOf(c);
        if (o) out.push(o);
      }
    }
    return out;
  }
}
