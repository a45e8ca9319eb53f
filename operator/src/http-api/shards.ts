// Map shards as the HTTP API shows them (DESIGN.md, "Map shards"): a shard FunctionCall holds
// hundreds of a map's items, and every route shows each item as the call it is (the items that
// protocol/src/shards.ts decodes), never the shard. A request may have 100,000 items in 200 shards
// and the live graph is redrawn every few hundred milliseconds, so two things are kept: each
// shard object's items (an unchanged shard is not decoded again) and each shard's item names
// (SHA-256 each, hashed once while the shard is among the recently read).
import { callAsShown, isShard, itemName, shardItem } from "../../../protocol/index.js";
import type { CallObject, HttpApiDeps } from "./types.js";

/** Most item names kept (least recently read shards forgotten first): about 20 MB. */
export const ITEM_NAMES_MAX = 250_000;

export class ShardReader {
  /** Items of a shard object: the informer replaces an object when it changes, so this follows. */
  private readonly decoded = new WeakMap<CallObject, CallObject[]>();
  /** Item names by shard (its request, map, offset and size fix them), least recently read first. */
  private readonly names = new Map<string, string[]>();
  private namesHeld = 0;

  constructor(private readonly maxNames = ITEM_NAMES_MAX) {}

  /** The names of a shard's items, in order. */
  namesOf(shard: CallObject): string[] {
    const sh = shard.spec.shard!;
    const map = shard.spec.parent ?? "";
    const request = shard.spec.request ?? map;
    const key = `${request}/${map}/${sh.offset}/${sh.items.length}`;
    let names = this.names.get(key);
    if (names) {
      this.names.delete(key); // most recently read last
      this.names.set(key, names);
      return names;
    }
    names = new Array<string>(sh.items.length);
    for (let i = 0; i < sh.items.length; i++) names[i] = itemName(request, map, sh.offset + i);
    this.names.set(key, names);
    this.namesHeld += names.length;
    for (const [k, v] of this.names) {
      if (this.namesHeld <= this.maxNames || k === key) break;
      this.names.delete(k);
      this.namesHeld -= v.length;
    }
    return names;
  }

  /** Item i of a shard as a FunctionCall of its own. */
  item(shard: CallObject, i: number): CallObject {
    const items = this.decoded.get(shard);
    return items ? items[i]! : shardItem(shard, i, this.namesOf(shard)[i]);
  }

  /** Every item of a shard, in order (the same array while the shard object is unchanged). */
  items(shard: CallObject): CallObject[] {
    let items = this.decoded.get(shard);
    if (items) return items;
    const names = this.namesOf(shard);
    items = names.map((name, i) => shardItem(shard, i, name));
    this.decoded.set(shard, items);
    return items;
  }

  /** Calls as users see them: each shard replaced by its items (a new array). */
  expand(calls: readonly CallObject[]): CallObject[] {
    const out: CallObject[] = [];
    for (const c of calls) {
      if (!isShard(c)) out.push(callAsShown(c));
      else for (const item of this.items(c)) out.push(item);
    }
    return out;
  }

  /** The item named `name` among the shards of `calls`, or undefined. */
  findItem(calls: readonly CallObject[], name: string): CallObject | undefined {
    for (const c of calls) {
      if (!isShard(c)) continue;
      const i = this.namesOf(c).indexOf(name);
      if (i >= 0) return this.item(c, i);
    }
    return undefined;
  }

  /**
   * One page of the calls made by `parent`, in sequence order, and how many there are. A shard's
   * items are contiguous in sequence (offset … offset+n-1), so shards are ordered as wholes and
   * only those the page falls on are decoded.
   */
  children(
    calls: readonly CallObject[],
    parent: string,
    offset: number,
    limit: number,
  ): { total: number; page: CallObject[] } {
    const parts: { start: number; size: number; c: CallObject }[] = [];
    let total = 0;
    for (const c of calls) {
      if (c.spec.parent !== parent) continue;
      const sh = c.spec.shard;
      const part = sh ? { start: sh.offset, size: sh.items.length, c } : { start: c.spec.sequence ?? 0, size: 1, c };
      parts.push(part);
      total += part.size;
    }
    parts.sort((a, b) => a.start - b.start);
    const page: CallObject[] = [];
    let at = 0; // index in the whole list of the part's first call
    for (const part of parts) {
      if (page.length >= limit) break;
      const end = at + part.size;
      if (end > offset) {
        if (!isShard(part.c)) page.push(callAsShown(part.c));
        else
          for (let i = Math.max(0, offset - at); i < part.size && page.length < limit; i++)
            page.push(this.item(part.c, i));
      }
      at = end;
    }
    return { total, page };
  }

  /** For tests: how many item names are held. */
  heldNames(): number {
    return this.namesHeld;
  }
}

/** The reader the routes share (its caches are bounded). */
export const shardReader = new ShardReader();

/** The cached objects of a request: its root, its calls and its shards (not expanded). */
export function requestObjects(deps: HttpApiDeps, namespace: string, request: string): CallObject[] {
  const indexed = deps.calls.byIndex("byRequest", `${namespace}/${request}`);
  if (indexed.length) return indexed;
  return deps.calls.list(namespace).filter((c) => c.metadata.name === request || c.spec.request === request);
}

/** A call of the request by name from the cache: an object (never a shard), or an item of one of its shards. */
export function cachedCall(
  deps: HttpApiDeps,
  namespace: string,
  request: string,
  name: string,
): CallObject | undefined {
  const c = deps.calls.get(`${namespace}/${name}`);
  if (c) return isShard(c) ? undefined : callAsShown(c);
  return shardReader.findItem(requestObjects(deps, namespace, request), name);
}
