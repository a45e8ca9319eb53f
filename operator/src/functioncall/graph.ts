// In-memory index over the FunctionCalls: the newest version of each call (from watch events and
// from our own write responses, whichever is newer) plus the relations the engine walks:
// children by parent, calls by request, dependents by input, delegators by tail call, and the
// first RequestError of each request. Listeners hear every change once, in order.
import { compareResourceVersions } from "../kube/index.js";
import { type Call, allInputs, callKey, keyOfCall, nameOf, namespaceOf, requestOf } from "./calls.js";

export type GraphListener = (key: string, prev: Call | undefined, next: Call | undefined) => void;

/** Indexers for the kube-layer FunctionCall informer, for readers other than the engine. */
export const FUNCTION_CALL_INDEXERS = {
  byRequest: (c: Call): string[] => [callKey(namespaceOf(c), requestOf(c))],
  byParent: (c: Call): string[] => (c.spec.parent ? [callKey(namespaceOf(c), c.spec.parent)] : []),
} as const;

class MultiIndex {
  private readonly m = new Map<string, Set<string>>();
  add(k: string, v: string) {
    let s = this.m.get(k);
    if (!s) this.m.set(k, (s = new Set()));
    s.add(v);
  }
  delete(k: string, v: string) {
    const s = this.m.get(k);
    if (!s) return;
    s.delete(v);
    if (s.size === 0) this.m.delete(k);
  }
  get(k: string): ReadonlySet<string> {
    return this.m.get(k) ?? EMPTY;
  }
}
const EMPTY: ReadonlySet<string> = new Set();

/** Counts over a parent's children, kept as calls change (a map's progress in O(1)). */
export interface ChildStats {
  count: number;
  succeeded: number;
  /** Children that Failed or were Cancelled. */
  failed: Set<string>;
}
const TOMBSTONES_MAX = 10_000;

export class CallGraph {
  private readonly calls = new Map<string, Call>();
  private readonly children = new MultiIndex();
  private readonly byRequest = new MultiIndex();
  private readonly dependents = new MultiIndex();
  private readonly delegators = new MultiIndex();
  private readonly requestErrors = new Map<string, string>();
  private readonly stats = new Map<string, ChildStats>();
  private readonly tombstones = new Map<string, string | undefined>();
  private readonly listeners: GraphListener[] = [];

  onChange(l: GraphListener): void {
    this.listeners.push(l);
  }

  get(namespace: string, name: string): Call | undefined {
    return this.calls.get(callKey(namespace, name));
  }
  getKey(key: string): Call | undefined {
    return this.calls.get(key);
  }
  size(): number {
    return this.calls.size;
  }
  all(): IterableIterator<Call> {
    return this.calls.values();
  }

  /** Names of the calls made by `parent` (map items and reduce steps included). */
  childrenOf(namespace: string, parent: string): string[] {
    return [...this.children.get(callKey(namespace, parent))];
  }
  /** Names of every call of a request, the root included. */
  callsOfRequest(namespace: string, request: string): string[] {
    return [...this.byRequest.get(callKey(namespace, request))];
  }
  /** Names of the calls that read `input`'s output. */
  dependentsOf(namespace: string, input: string): string[] {
    return [...this.dependents.get(callKey(namespace, input))];
  }
  /** Names of the calls that delegated their output to `tail`. */
  delegatorsOf(namespace: string, tail: string): string[] {
    return [...this.delegators.get(callKey(namespace, tail))];
  }
  /** How many children `parent` has, how many Succeeded, which failed. */
  childStats(namespace: string, parent: string): { count: number; succeeded: number; failed: string | undefined } {
    const s = this.stats.get(callKey(namespace, parent));
    if (!s) return { count: 0, succeeded: 0, failed: undefined };
    return { count: s.count, succeeded: s.succeeded, failed: s.failed.values().next().value };
  }

  /** The first call of the request known to have failed with a RequestError. */
  requestErrorOf(namespace: string, request: string): string | undefined {
    return this.requestErrors.get(callKey(namespace, request));
  }

  /**
   * Takes a version of a call (watch event or write response). Older versions than the one held
   * are ignored; returns whether it was taken.
   */
  observe(obj: Call): boolean {
    const key = keyOfCall(obj);
    const prev = this.calls.get(key);
    const rv = obj.metadata.resourceVersion;
    if (prev) {
      const cmp = compareResourceVersions(rv, prev.metadata.resourceVersion);
      if (cmp !== undefined && cmp <= 0) return false;
    } else if (this.tombstones.has(key)) {
      const cmp = compareResourceVersions(rv, this.tombstones.get(key));
      if (cmp === undefined || cmp <= 0) return false;
      this.tombstones.delete(key);
    }
    if (prev) this.unindex(prev);
    this.calls.set(key, obj);
    this.index(obj);
    this.emit(key, prev, obj);
    return true;
  }

  remove(obj: Call): void {
    const key = keyOfCall(obj);
    const prev = this.calls.get(key);
    if (this.tombstones.size >= TOMBSTONES_MAX) this.tombstones.clear();
    this.tombstones.set(key, obj.metadata.resourceVersion ?? prev?.metadata.resourceVersion);
    if (!prev) return;
    this.unindex(prev);
    this.calls.delete(key);
    this.emit(key, prev, undefined);
  }

  private emit(key: string, prev: Call | undefined, next: Call | undefined) {
    for (const l of this.listeners) l(key, prev, next);
  }

  private index(c: Call) {
    const ns = namespaceOf(c);
    const name = nameOf(c);
    if (c.spec.parent) {
      const pk = callKey(ns, c.spec.parent);
      this.children.add(pk, name);
      let s = this.stats.get(pk);
      if (!s) this.stats.set(pk, (s = { count: 0, succeeded: 0, failed: new Set() }));
      s.count++;
      const p = c.status?.phase;
      if (p === "Succeeded") s.succeeded++;
      else if (p === "Failed" || p === "Cancelled") s.failed.add(name);
    }
    this.byRequest.add(callKey(ns, requestOf(c)), name);
    for (const i of allInputs(c)) this.dependents.add(callKey(ns, i), name);
    if (c.status?.tailCall) this.delegators.add(callKey(ns, c.status.tailCall), name);
    if (c.status?.error?.reason === "request_error" && c.status.phase === "Failed") {
      const rk = callKey(ns, requestOf(c));
      if (!this.requestErrors.has(rk)) this.requestErrors.set(rk, name);
    }
  }

  private unindex(c: Call) {
    const ns = namespaceOf(c);
    const name = nameOf(c);
    if (c.spec.parent) {
      const pk = callKey(ns, c.spec.parent);
      this.children.delete(pk, name);
      const s = this.stats.get(pk);
      if (s) {
        s.count--;
        if (c.status?.phase === "Succeeded") s.succeeded--;
        s.failed.delete(name);
        if (s.count === 0) this.stats.delete(pk);
      }
    }
    this.byRequest.delete(callKey(ns, requestOf(c)), name);
    for (const i of allInputs(c)) this.dependents.delete(callKey(ns, i), name);
    if (c.status?.tailCall) this.delegators.delete(callKey(ns, c.status.tailCall), name);
    const rk = callKey(ns, requestOf(c));
    if (this.requestErrors.get(rk) === name) this.requestErrors.delete(rk);
  }
}
