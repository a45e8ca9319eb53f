// Map shards (DESIGN.md, "Map shards"): a shard FunctionCall holds up to SHARD_MAX_ITEMS items of a
// map, each a call of its own whose state is one compact entry of the shard's status. These pure
// functions turn a shard into its items' FunctionCalls (what every reader shows: the engine, the
// HTTP API, `kubectl trellis graph`) and an item's status back into its entry (what the operator
// writes, many items in one status write).
import {
  type CallError,
  type FunctionCall,
  type FunctionCallStatus,
  ITEM_PHASE_LETTERS,
  type Phase,
  SHARD_MAX_ITEMS,
  type ShardItemStatus,
} from "./api/v1alpha1/functioncall.js";
import type { ValueRef } from "./api/v1alpha1/common.js";
import { childName } from "./child-names.js";

export { SHARD_MAX_ITEMS };

/** Largest JSON of one shard's items: with its entries the object stays well under 256 KiB. */
export const SHARD_MAX_SPEC_BYTES = 96 * 1024;
/** An item's output over this many JSON bytes goes to the blob store (a shard holds hundreds). */
export const SHARD_ITEM_INLINE_BYTES = 256;
/** An item's error over this many JSON bytes is shortened: the head of its message, the tail of its traceback. */
export const SHARD_ITEM_ERROR_BYTES = 1024;
/** On an item as readers see it: the shard FunctionCall that holds it. */
export const SHARD_ANNOTATION = "trellis.dev/shard";

type Meta = {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: unknown;
  deletionTimestamp?: unknown;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
};
/** A FunctionCall with the metadata readers use. */
export type ShardCall = FunctionCall & { metadata: Meta };

export const isShard = (c: Pick<FunctionCall, "spec">): boolean => c.spec.shard !== undefined;

/** Shard j of a map: named like any child of the map (same length), from a sequence of its own. */
export function shardName(request: string, map: string, j: number): string {
  return childName(request, `${map}/shard`, j);
}

/** The name of map item i (as when it is an object of its own). */
export function itemName(request: string, map: string, i: number): string {
  return childName(request, map, i);
}

export interface ShardPlan {
  offset: number;
  count: number;
}

/** The map's items cut into shards in order: at most `maxItems` each and `maxBytes` of item JSON. */
export function planShards(
  items: readonly ValueRef[],
  maxItems = SHARD_MAX_ITEMS,
  maxBytes = SHARD_MAX_SPEC_BYTES,
): ShardPlan[] {
  const out: ShardPlan[] = [];
  let offset = 0;
  let count = 0;
  let bytes = 0;
  for (let i = 0; i < items.length; i++) {
    const b = JSON.stringify(items[i]).length + 1;
    if (count > 0 && (count >= maxItems || bytes + b > maxBytes)) {
      out.push({ offset, count });
      offset = i;
      count = 0;
      bytes = 0;
    }
    count++;
    bytes += b;
  }
  if (count > 0) out.push({ offset, count });
  return out;
}

/** The phase of an item entry's letter. */
export const PHASE_BY_LETTER: Record<(typeof ITEM_PHASE_LETTERS)[number], Phase> = {
  P: "Pending",
  B: "Blocked",
  Q: "Queued",
  R: "Running",
  D: "Delegated",
  S: "Succeeded",
  F: "Failed",
  C: "Cancelled",
};
const letterOf = (p: Phase) => p[0] as (typeof ITEM_PHASE_LETTERS)[number];

const iso = (epoch: number, off: number) => new Date(epoch + off).toISOString();

const COUNTS = [
  ["a", "attempts"],
  ["i", "infrastructureFailures"],
  ["d", "disruptions"],
] as const;
const TIMES = [
  ["q", "queuedTime"],
  ["s", "startTime"],
  ["c", "completionTime"],
  ["r", "retryAfter"],
] as const;

/** An item's status from its entry (the pod by index in `pods`, times as offsets from `epoch`). */
export function itemStatus(e: ShardItemStatus | undefined, pods: readonly string[], epoch: number): FunctionCallStatus {
  const s: FunctionCallStatus = {};
  if (!e) return s;
  if (e.p !== undefined && e.p !== "P") s.phase = PHASE_BY_LETTER[e.p];
  for (const [k, f] of COUNTS) if (e[k] !== undefined) s[f] = e[k];
  if (e.w !== undefined && pods[e.w] !== undefined) s.pod = pods[e.w];
  for (const [k, f] of TIMES) if (e[k] !== undefined) s[f] = iso(epoch, e[k]);
  if (e.o !== undefined) s.output = e.o;
  if (e.t !== undefined) s.tailCall = e.t;
  if (e.e !== undefined) s.error = e.e;
  return s;
}

const offset = (t: string | undefined, epoch: number) => {
  if (t === undefined) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms - epoch;
};

/**
 * An item's entry from its status. A pod not in `pods` is appended to it. Progress and conditions
 * are not kept for items (a shard holds hundreds); an error over SHARD_ITEM_ERROR_BYTES is shortened.
 */
export function itemEntry(s: FunctionCallStatus, pods: string[], epoch: number): ShardItemStatus {
  const e: ShardItemStatus = {};
  if (s.phase !== undefined && s.phase !== "Pending") e.p = letterOf(s.phase);
  for (const [k, f] of COUNTS) if (s[f]) e[k] = s[f];
  if (s.pod !== undefined) {
    let n = pods.indexOf(s.pod);
    if (n < 0) n = pods.push(s.pod) - 1;
    e.w = n;
  }
  for (const [k, f] of TIMES) {
    const off = offset(s[f], epoch);
    if (off !== undefined) e[k] = off;
  }
  if (s.output !== undefined) e.o = s.output;
  if (s.tailCall !== undefined) e.t = s.tailCall;
  if (s.error !== undefined) e.e = shortError(s.error);
  return e;
}

/** The error kept whole when small, else its message's head and its traceback's tail. */
export function shortError(err: CallError, max = SHARD_ITEM_ERROR_BYTES): CallError {
  const size = JSON.stringify(err).length;
  if (size <= max) return err;
  const out: CallError = { ...err };
  const room = Math.max(64, max - 256 - err.type.length);
  const note = ` [shortened from ${err.message.length} characters]`;
  if (err.message.length > room / 2) out.message = err.message.slice(0, Math.floor(room / 2)) + note;
  if (err.traceback !== undefined) {
    const keep = Math.max(0, room - out.message.length);
    out.traceback =
      err.traceback.length > keep ? "…" + err.traceback.slice(err.traceback.length - keep) : err.traceback;
  }
  return out;
}

export const entriesEqual = (a: ShardItemStatus | undefined, b: ShardItemStatus | undefined): boolean =>
  a === b || JSON.stringify(a ?? {}) === JSON.stringify(b ?? {});

/** Counts of a shard's items by phase, and the shard's own phase (Running until every item ended). */
export function shardSummary(
  total: number,
  entries: readonly (ShardItemStatus | undefined)[],
): { phase: Phase; itemCounts: NonNullable<FunctionCallStatus["itemCounts"]> } {
  let succeeded = 0;
  let failed = 0;
  let cancelled = 0;
  let running = 0;
  for (let i = 0; i < total; i++) {
    const p = entries[i]?.p;
    if (p === "S") succeeded++;
    else if (p === "F") failed++;
    else if (p === "C") cancelled++;
    else if (p === "R" || p === "D") running++;
  }
  const ended = succeeded + failed + cancelled === total;
  const phase: Phase = !ended
    ? running > 0 || succeeded + failed + cancelled > 0
      ? "Running"
      : "Pending"
    : failed > 0
      ? "Failed"
      : cancelled > 0
        ? "Cancelled"
        : "Succeeded";
  return { phase, itemCounts: { total, succeeded, failed: failed + cancelled, running } };
}

/** What an item takes of its shard's metadata (deleting the shard deletes its items). */
const ITEM_META = ["namespace", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "labels"] as const;

function pick(m: Meta, keys: readonly (keyof Meta)[]): Meta {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (m[k] !== undefined) out[k] = m[k];
  return out as Meta;
}

/** Item i of a shard as a FunctionCall of its own (`name`: its name when the caller has it). */
export function shardItem<T extends ShardCall>(shard: T, i: number, name?: string): T {
  const sh = shard.spec.shard!;
  const map = shard.spec.parent!;
  const request = shard.spec.request ?? map;
  const spec: FunctionCall["spec"] = {
    application: shard.spec.application,
    function: shard.spec.function,
    parent: map,
    request,
    sequence: sh.offset + i,
    args: [sh.items[i]!],
  };
  if (shard.spec.headers) spec.headers = shard.spec.headers;
  const metadata: Meta = {
    ...pick(shard.metadata, ITEM_META),
    name: name ?? itemName(request, map, sh.offset + i),
    annotations: { [SHARD_ANNOTATION]: shard.metadata.name ?? "" },
  };
  const st = shard.status;
  const status = itemStatus(st?.items?.[i], st?.pods ?? [], st?.epoch ?? 0);
  const out = { apiVersion: shard.apiVersion, kind: shard.kind, metadata, spec } as T;
  if (Object.keys(status).length > 0) out.status = status;
  return out;
}

/** Every item of a shard, in order. */
export function expandShard<T extends ShardCall>(shard: T): T[] {
  const n = shard.spec.shard?.items.length ?? 0;
  const out: T[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = shardItem(shard, i);
  return out;
}

/** Calls as readers show them: each shard replaced by its items. */
export function expandShards<T extends ShardCall>(calls: readonly T[]): T[] {
  const out: T[] = [];
  for (const c of calls) {
    if (isShard(c)) out.push(...expandShard(c));
    else out.push(c);
  }
  return out;
}

/**
 * A shard's status with the given items' new states (by index) in place: entries, pods, counts,
 * and the shard's phase (with its completionTime once every item ended).
 */
export function shardStatusWith(
  shard: Pick<FunctionCall, "spec" | "status">,
  changed: ReadonlyMap<number, FunctionCallStatus>,
  now: number,
): FunctionCallStatus {
  const st = shard.status ?? {};
  const epoch = st.epoch ?? now;
  const pods = [...(st.pods ?? [])];
  const n = shard.spec.shard?.items.length ?? 0;
  const entries = (st.items ?? []).slice(0, n);
  for (let i = entries.length; i < n; i++) entries.push({});
  for (const [i, s] of changed) if (i < n) entries[i] = itemEntry(s, pods, epoch);
  const { phase, itemCounts } = shardSummary(n, entries);
  const status: FunctionCallStatus = { ...st, phase, epoch, pods, items: entries, itemCounts };
  const ended = phase === "Succeeded" || phase === "Failed" || phase === "Cancelled";
  if (!ended) delete status.completionTime;
  else status.completionTime ??= new Date(now).toISOString();
  return status;
}
