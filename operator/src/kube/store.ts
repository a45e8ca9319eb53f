// The informer's cache as a pure data structure: objects by key, declared indexes, staleness
// rules and the relist diff. No I/O, so every rule here is unit-tested without a server.
import { type Cache, type KubeObject, type ObjectKey, type WatchEventType, keyOf } from "./types.js";

export type Indexers<T> = Record<string, (obj: T) => string[]>;

export interface StoreChange<T> {
  type: WatchEventType;
  obj: T;
  old: T | undefined;
}

/**
 * Orders two resourceVersions. They are opaque strings by contract, but etcd-backed servers use
 * integers; when both parse as integers they are compared, otherwise the result is undefined and
 * the caller treats the newer event as authoritative.
 */
export function compareResourceVersions(a: string | undefined, b: string | undefined): number | undefined {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return undefined;
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export class Store<T extends KubeObject> implements Cache<T> {
  private readonly objects = new Map<ObjectKey, T>();
  private readonly byNamespace = new Map<string, Set<ObjectKey>>();
  private readonly indexes = new Map<string, Map<string, Set<ObjectKey>>>();
  private readonly indexedValues = new Map<ObjectKey, Map<string, string[]>>();
  private loaded = false;

  constructor(private readonly indexers: Indexers<T> = {}) {
    for (const name of Object.keys(indexers)) this.indexes.set(name, new Map());
  }

  get(key: ObjectKey): T | undefined {
    return this.objects.get(key);
  }

  list(namespace?: string): T[] {
    if (namespace === undefined) return [...this.objects.values()];
    const keys = this.byNamespace.get(namespace);
    return keys ? [...keys].map((k) => this.objects.get(k)!) : [];
  }

  keys(): IterableIterator<ObjectKey> {
    return this.objects.keys();
  }

  byIndex(indexName: string, value: string): T[] {
    const idx = this.indexes.get(indexName);
    if (!idx)
      throw new Error(
        `informer index "${indexName}": not declared (declared: ${[...this.indexes.keys()].join(", ") || "none"})`,
      );
    const keys = idx.get(value);
    return keys ? [...keys].map((k) => this.objects.get(k)!) : [];
  }

  size(): number {
    return this.objects.size;
  }

  synced(): boolean {
    return this.loaded;
  }

  markSynced(): void {
    this.loaded = true;
  }

  /**
   * Applies one watch event. Returns the change to announce, or undefined when the event is
   * stale (older than the cached version) or changes nothing (same version).
   */
  apply(type: WatchEventType, obj: T): StoreChange<T> | undefined {
    const key = keyOf(obj);
    const old = this.objects.get(key);
    if (type === "DELETED") {
      if (!old) return undefined;
      const c = compareResourceVersions(obj.metadata.resourceVersion, old.metadata.resourceVersion);
      if (c !== undefined && c < 0) return undefined; // deletion of an older incarnation
      this.remove(key);
      return { type, obj, old };
    }
    if (old) {
      const c = compareResourceVersions(obj.metadata.resourceVersion, old.metadata.resourceVersion);
      if (c !== undefined && c <= 0) return undefined;
      if (c === undefined && obj.metadata.resourceVersion === old.metadata.resourceVersion) return undefined;
    }
    this.put(key, obj);
    return old ? { type: "MODIFIED", obj, old } : { type: "ADDED", obj, old: undefined };
  }

  /**
   * Reconciles the cache with a full list taken at `listResourceVersion`, returning the changes.
   * An object missing from the list is deleted unless the cache holds a version newer than the
   * list (it was created after the list snapshot and seen by the watch).
   */
  replace(items: T[], listResourceVersion: string | undefined): StoreChange<T>[] {
    const changes: StoreChange<T>[] = [];
    const seen = new Set<ObjectKey>();
    for (const obj of items) {
      const key = keyOf(obj);
      seen.add(key);
      const ch = this.apply("ADDED", obj);
      if (ch) changes.push(ch);
    }
    for (const key of [...this.objects.keys()]) {
      if (seen.has(key)) continue;
      const old = this.objects.get(key)!;
      const c = compareResourceVersions(old.metadata.resourceVersion, listResourceVersion);
      if (c !== undefined && c > 0) continue;
      this.remove(key);
      changes.push({ type: "DELETED", obj: old, old });
    }
    this.loaded = true;
    return changes;
  }

  private put(key: ObjectKey, obj: T): void {
    if (this.objects.has(key)) this.unindex(key);
    this.objects.set(key, obj);
    const ns = obj.metadata.namespace ?? "";
    let set = this.byNamespace.get(ns);
    if (!set) this.byNamespace.set(ns, (set = new Set()));
    set.add(key);
    if (this.indexes.size === 0) return;
    const values = new Map<string, string[]>();
    for (const [name, fn] of Object.entries(this.indexers)) {
      const vs = fn(obj);
      values.set(name, vs);
      const idx = this.indexes.get(name)!;
      for (const v of vs) {
        let s = idx.get(v);
        if (!s) idx.set(v, (s = new Set()));
        s.add(key);
      }
    }
    this.indexedValues.set(key, values);
  }

  private remove(key: ObjectKey): void {
    const obj = this.objects.get(key);
    if (!obj) return;
    this.unindex(key);
    this.objects.delete(key);
  }

  private unindex(key: ObjectKey): void {
    const obj = this.objects.get(key)!;
    const ns = obj.metadata.namespace ?? "";
    const set = this.byNamespace.get(ns);
    if (set) {
      set.delete(key);
      if (set.size === 0) this.byNamespace.delete(ns);
    }
    const values = this.indexedValues.get(key);
    if (!values) return;
    for (const [name, vs] of values) {
      const idx = this.indexes.get(name)!;
      for (const v of vs) {
        const s = idx.get(v);
        if (!s) continue;
        s.delete(key);
        if (s.size === 0) idx.delete(v);
      }
    }
    this.indexedValues.delete(key);
  }
}
