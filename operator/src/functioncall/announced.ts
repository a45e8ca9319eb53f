// Children a pod created through the runtime API that the call graph (the informer's cache) may
// not show yet. A create whose answer was lost and whose retry met AlreadyExists leaves the child
// in the API server only, until its watch event arrives: a /wait on it then holds until the graph
// sees it instead of answering call_not_found. A record expires, so a name the graph never sees
// still gets a permanent error in the end.
import { callKey } from "./calls.js";
import type { CallGraph } from "./graph.js";

interface Announced {
  request: string;
  expires: number;
}

/** Records kept at most; the oldest go first (each is a name and a request). */
const MAX_RECORDS = 100_000;

export class AnnouncedChildren {
  private readonly byKey = new Map<string, Announced>();
  private readonly watchers = new Map<string, Set<() => void>>();

  constructor(
    private readonly graph: CallGraph,
    private readonly now: () => number,
    /** How long a created child may stay out of the graph before a wait on it is refused. */
    private readonly ttlMs: number,
  ) {
    graph.onChange((key, _prev, next) => {
      if (next) this.seen(key);
    });
  }

  /** Children of `request` the engine created or found existing, kept while the graph lacks them. */
  record(namespace: string, request: string, names: readonly string[]): void {
    this.prune();
    const expires = this.now() + this.ttlMs;
    for (const n of names) {
      if (this.graph.get(namespace, n)) continue;
      const key = callKey(namespace, n);
      this.byKey.delete(key); // re-inserted at the end: the map stays in expiry order
      this.byKey.set(key, { request, expires });
      if (this.byKey.size > MAX_RECORDS) this.byKey.delete(this.byKey.keys().next().value!);
    }
  }

  /** The request of a child created but not yet in the graph (undefined: none, or expired). */
  requestOf(namespace: string, name: string): string | undefined {
    const a = this.byKey.get(callKey(namespace, name));
    return a && a.expires > this.now() ? a.request : undefined;
  }

  size(): number {
    return this.byKey.size;
  }

  /** Resolves true once the graph holds every one of `names`, false after `waitMs`. */
  visible(namespace: string, names: readonly string[], waitMs: number): Promise<boolean> {
    const missing = new Set(names.map((n) => callKey(namespace, n)).filter((k) => !this.graph.getKey(k)));
    if (missing.size === 0) return Promise.resolve(true);
    if (waitMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        for (const k of missing) this.unwatch(k, onSeen);
        resolve(ok);
      };
      const onSeen = () => {
        for (const k of missing) if (this.graph.getKey(k)) missing.delete(k);
        if (missing.size === 0) done(true);
      };
      const timer = setTimeout(() => done(false), waitMs);
      for (const k of missing) {
        let s = this.watchers.get(k);
        if (!s) this.watchers.set(k, (s = new Set()));
        s.add(onSeen);
      }
    });
  }

  private seen(key: string): void {
    this.byKey.delete(key);
    const s = this.watchers.get(key);
    if (!s) return;
    this.watchers.delete(key);
    for (const f of [...s]) f();
  }

  private unwatch(key: string, f: () => void): void {
    const s = this.watchers.get(key);
    s?.delete(f);
    if (s?.size === 0) this.watchers.delete(key);
  }

  private prune(): void {
    const now = this.now();
    for (const [k, a] of this.byKey) {
      if (a.expires > now) break;
      this.byKey.delete(k);
    }
  }
}
