// In-memory index over the FunctionCalls: the newest version of each call (from watch events and
// from our own write responses, whichever is newer) plus the relations the engine walks:
// children by parent, calls by request, dependents by input, delegators by tail call, and the
// first RequestError of each request. Listeners hear every change once, in order.
import {
  PHASE_BY_LETTER,
  type ValueRef,
  entriesEqual,
  expandShard,
  isShard,
  itemName,
  shardItem,
} from "../../../protocol/index.js";
import { compareResourceVersions } from "../kube/index.js";
import {
  type Call,
  allInputs,
  callKey,
  keyOfCall,
  nameOf,
  namespaceOf,
  requestOf,
  withAssignedStatus,
} from "./calls.js";

/** Where a map item held by a shard lives: the shard's key and the item's index in it. */
export interface ItemRef {
  shard: string;
  index: number;
}

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
type ItemLetter = keyof typeof PHASE_BY_LETTER;

/** Counts over a parent's children, kept as calls change (a map's progress in O(1)). */
export interface ChildStats {
  count: number;
  succeeded: number;
  /** Children that Failed or were Cancelled. */
  failed: Set<string>;
}
const TOMBSTONES_MAX = 10_000;
/** Item indexes in a slot's number: above SHARD_MAX_ITEMS. */
const ITEM_SLOT = 1024;
interface ShardSlot {
  key: string;
  names: string[];
}

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
  /**
   * Map items held by shards. An item is not an entry of `children` or `byRequest` (two Set
   * entries per item, ~10 MiB at 100,000 items): its parent and request list its shards, whose
   * item names are hashed once. `items` gives an item key's shard slot and index as one small
   * integer (slot * ITEM_SLOT + index) rather than an object per item.
   */
  private readonly items = new Map<string, number>();
  private readonly shards: (ShardSlot | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private readonly slotOf = new Map<string, number>();
  private readonly shardsByParent = new MultiIndex();
  private readonly shardsByRequest = new MultiIndex();

  onChange(l: GraphListener): void {
    this.listeners.push(l);
  }

  get(namespace: string, name: string): Call | undefined {
    return this.getKey(callKey(namespace, name));
  }
  /** A call by key: an object, or a map item decoded from its shard. */
  getKey(key: string): Call | undefined {
    const c = this.calls.get(key);
    if (c) return c;
    const v = this.items.get(key);
    const slot = v === undefined ? undefined : this.shards[Math.floor(v / ITEM_SLOT)];
    const shard = slot && this.calls.get(slot.key);
    if (!shard) return undefined;
    const index = v! % ITEM_SLOT;
    return shardItem(shard, index, slot.names[index]);
  }
  /** The shard holding map item `key`, when a shard holds it. */
  itemRef(key: string): ItemRef | undefined {
    const v = this.items.get(key);
    if (v === undefined) return undefined;
    const slot = this.shards[Math.floor(v / ITEM_SLOT)];
    return slot && { shard: slot.key, index: v % ITEM_SLOT };
  }
  /** Objects held (shards count once). */
  size(): number {
    return this.calls.size;
  }
  /**
   * Calls by namespace, application, function and phase (keys joined by NUL); a shard's items are
   * counted from their entries, without decoding them.
   */
  countByPhase(): Map<string, number> {
    const out = new Map<string, number>();
    const add = (c: Call, phase: string, n = 1) => {
      const k = `${namespaceOf(c)}\0${c.spec.application}\0${c.spec.function}\0${phase}`;
      out.set(k, (out.get(k) ?? 0) + n);
    };
    for (const c of this.calls.values()) {
      if (!isShard(c)) {
        add(c, c.status?.phase ?? "Pending");
        continue;
      }
      // Tallied by letter first: a key string and a map update per item made each scrape of a
      // 100,000-item map cost ~60 ms.
      const entries = c.status?.items ?? [];
      const n = c.spec.shard!.items.length;
      const tally = new Map<ItemLetter, number>();
      for (let i = 0; i < n; i++) {
        const p = entries[i]?.p ?? "P";
        tally.set(p, (tally.get(p) ?? 0) + 1);
      }
      for (const [p, k] of tally) add(c, PHASE_BY_LETTER[p], k);
    }
    return out;
  }

  /** Every call: objects, and the items of shards in place of the shards. */
  *all(): IterableIterator<Call> {
    for (const c of this.calls.values()) {
      if (isShard(c)) yield* expandShard(c);
      else yield c;
    }
  }

  /** Names of the calls made by `parent` (map items and reduce steps included). */
  childrenOf(namespace: string, parent: string): string[] {
    const k = callKey(namespace, parent);
    return this.withItems([...this.children.get(k)], this.shardsByParent.get(k));
  }
  /** Names of every call of a request, the root included. */
  callsOfRequest(namespace: string, request: string): string[] {
    const k = callKey(namespace, request);
    return this.withItems([...this.byRequest.get(k)], this.shardsByRequest.get(k));
  }
  private withItems(out: string[], shards: ReadonlySet<string>): string[] {
    for (const sk of shards) {
      const names = this.shards[this.slotOf.get(sk)!]?.names;
      if (names) for (const n of names) out.push(n);
    }
    return out;
  }
  /** Names of the calls that read `input`'s output. */
  dependentsOf(namespace: string, input: string): string[] {
    return [...this.dependents.get(callKey(namespace, input))];
  }
  /** Names of the calls that delegated their output to `tail`. */
  delegatorsOf(namespace: string, tail: string): string[] {
    return [...this.delegators.get(callKey(namespace, tail))];
  }
  /** See CallView.childOutputs: objects' outputs, and items' from their shards' entries. */
  childOutputs(namespace: string, parent: string, n: number): ValueRef[] | undefined {
    const k = callKey(namespace, parent);
    const out: (ValueRef | undefined)[] = new Array(n);
    let found = 0;
    const put = (i: number | undefined, succeeded: boolean, o: ValueRef | undefined) => {
      if (!succeeded || i === undefined || i >= n || out[i] !== undefined) return;
      out[i] = o ?? { value: null };
      found++;
    };
    for (const name of this.children.get(k)) {
      const c = this.calls.get(callKey(namespace, name));
      if (c) put(c.spec.sequence, c.status?.phase === "Succeeded", c.status?.output);
    }
    for (const sk of this.shardsByParent.get(k)) {
      const shard = this.calls.get(sk);
      if (!shard || shard.metadata.deletionTimestamp) continue;
      const { offset, items } = shard.spec.shard!;
      const entries = shard.status?.items ?? [];
      for (let i = 0; i < items.length; i++) put(offset + i, entries[i]?.p === "S", entries[i]?.o);
    }
    return found === n ? (out as ValueRef[]) : undefined;
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
   * are ignored; returns whether it was taken. A call created assigned to a pod, with no status
   * written yet, is held as Running on that pod (`withAssignedStatus`).
   */
  observe(version: Call): boolean {
    const obj = withAssignedStatus(version);
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
    if (isShard(obj)) {
      this.calls.set(key, obj);
      this.shardChanged(key, prev, obj);
      return true;
    }
    if (prev) this.unindex(prev);
    this.calls.set(key, obj);
    this.index(obj);
    this.emit(key, prev, obj);
    return true;
  }

  /** A shard's item names, hashed and indexed at its first sight. */
  private itemNamesOf(key: string, shard: Call): string[] {
    const held = this.slotOf.get(key);
    if (held !== undefined) return this.shards[held]!.names; // slotOf and shards change together
    const { offset, items } = shard.spec.shard!;
    const request = requestOf(shard);
    const ns = namespaceOf(shard);
    const names = items.map((_, i) => itemName(request, shard.spec.parent!, offset + i));
    const slot = this.freeSlots.pop() ?? this.shards.length;
    this.shards[slot] = { key, names };
    this.slotOf.set(key, slot);
    names.forEach((n, index) => this.items.set(callKey(ns, n), slot * ITEM_SLOT + index));
    this.shardsByParent.add(callKey(ns, shard.spec.parent!), key);
    this.shardsByRequest.add(callKey(ns, request), key);
    return names;
  }

  private dropShard(key: string, shard: Call, names: string[]): void {
    const ns = namespaceOf(shard);
    for (const n of names) this.items.delete(callKey(ns, n));
    this.shardsByParent.delete(callKey(ns, shard.spec.parent!), key);
    this.shardsByRequest.delete(callKey(ns, requestOf(shard)), key);
    const slot = this.slotOf.get(key)!;
    this.slotOf.delete(key);
    this.shards[slot] = undefined;
    this.freeSlots.push(slot);
  }

  /**
   * A shard is a container, not a call: its items are the calls. Each item whose entry changed is
   * indexed and heard of as a call of its own (every index first, then the listeners).
   */
  private shardChanged(key: string, prev: Call | undefined, next: Call | undefined): void {
    const ns = namespaceOf((next ?? prev)!);
    const names = this.itemNamesOf(key, (next ?? prev)!);
    const changes: [string, Call | undefined, Call | undefined][] = [];
    for (const i of changedItems(prev, next, names.length)) {
      const pv = prev && shardItem(prev, i, names[i]);
      const nv = next && shardItem(next, i, names[i]);
      if (pv) this.unindex(pv, true);
      if (nv) this.index(nv, true);
      changes.push([callKey(ns, names[i]!), pv, nv]);
    }
    if (!next) this.dropShard(key, prev!, names);
    for (const [k, pv, nv] of changes) this.emit(k, pv, nv);
  }

  remove(obj: Call): void {
    const key = keyOfCall(obj);
    const prev = this.calls.get(key);
    if (this.tombstones.size >= TOMBSTONES_MAX) this.tombstones.clear();
    this.tombstones.set(key, obj.metadata.resourceVersion ?? prev?.metadata.resourceVersion);
    if (!prev) return;
    this.calls.delete(key);
    if (isShard(prev)) return this.shardChanged(key, prev, undefined);
    this.unindex(prev);
    this.emit(key, prev, undefined);
  }

  private emit(key: string, prev: Call | undefined, next: Call | undefined) {
    for (const l of this.listeners) l(key, prev, next);
  }

  /** `item`: a shard's item, listed through its shard rather than in `children` and `byRequest`. */
  private index(c: Call, item = false) {
    const ns = namespaceOf(c);
    const name = nameOf(c);
    if (c.spec.parent) {
      const pk = callKey(ns, c.spec.parent);
      if (!item) this.children.add(pk, name);
      this.countChild(pk, name, c.status?.phase);
    }
    if (!item) this.byRequest.add(callKey(ns, requestOf(c)), name);
    for (const i of allInputs(c)) this.dependents.add(callKey(ns, i), name);
    if (c.status?.tailCall) this.delegators.add(callKey(ns, c.status.tailCall), name);
    if (c.status?.error?.reason === "request_error" && c.status.phase === "Failed") {
      const rk = callKey(ns, requestOf(c));
      if (!this.requestErrors.has(rk)) this.requestErrors.set(rk, name);
    }
  }

  private countChild(pk: string, name: string, phase: string | undefined) {
    let s = this.stats.get(pk);
    if (!s) this.stats.set(pk, (s = { count: 0, succeeded: 0, failed: new Set() }));
    s.count++;
    if (phase === "Succeeded") s.succeeded++;
    else if (phase === "Failed" || phase === "Cancelled") s.failed.add(name);
  }

  private unindex(c: Call, item = false) {
    const ns = namespaceOf(c);
    const name = nameOf(c);
    if (c.spec.parent) {
      const pk = callKey(ns, c.spec.parent);
      if (!item) this.children.delete(pk, name);
      const s = this.stats.get(pk);
      if (s) {
        s.count--;
        if (c.status?.phase === "Succeeded") s.succeeded--;
        s.failed.delete(name);
        if (s.count === 0) this.stats.delete(pk);
      }
    }
    if (!item) this.byRequest.delete(callKey(ns, requestOf(c)), name);
    for (const i of allInputs(c)) this.dependents.delete(callKey(ns, i), name);
    if (c.status?.tailCall) this.delegators.delete(callKey(ns, c.status.tailCall), name);
    const rk = callKey(ns, requestOf(c));
    if (this.requestErrors.get(rk) === name) this.requestErrors.delete(rk);
  }
}

/** Indexes of the items whose state differs between two versions of a shard (all when one is missing). */
function changedItems(prev: Call | undefined, next: Call | undefined, n: number): number[] {
  const all = !prev || !next || prev.metadata.deletionTimestamp !== next.metadata.deletionTimestamp;
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (all || !entriesEqual(prev.status?.items?.[i], next.status?.items?.[i])) out.push(i);
  return out;
}
