// A request's calls as the web view draws them: one node per call, map/reduce items folded into
// counts on their collection call (a 10,000-item map stays one node), failed items kept so their
// errors stay visible. Pure: the routes feed it the cached FunctionCalls of one request, map
// shards expanded into their items (a shard left in is expanded here: it is never a node).
import { ANNOTATION, PHASES } from "../../../../protocol/index.js";
import { shardReader } from "../shards.js";
import type { CallObject } from "../types.js";

/** Most nodes one answer carries; the rest are counted in `hidden`. */
export const MAX_NODES = 300;
/** Failed items of a folded collection that stay nodes (their errors and tracebacks). */
export const MAX_FAILED_ITEMS = 3;

export interface CallNode {
  name: string;
  function: string;
  kind: "call" | "map" | "reduce";
  parent: string | null;
  sequence: number | null;
  phase: string;
  attempts: number;
  disruptions: number;
  infrastructure_failures: number;
  pod: string | null;
  created_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  tail_call: string | null;
  /** Calls whose outputs this call takes as arguments or items. */
  inputs: string[];
  progress: { current: number; total: number; message?: string | undefined } | null;
  error: {
    type: string;
    message: string;
    traceback: string | null;
    reason: string | null;
    cause: string | null;
  } | null;
  /** A map/reduce call: its items (children) by phase; only failed ones are nodes. */
  items: { total: number; phases: Record<string, number> } | null;
}

export interface CallGraph {
  calls: CallNode[];
  /** Calls not drawn: folded items and their descendants, and whatever is past MAX_NODES. */
  hidden: number;
}

const ms = (t: string | undefined): number | null => (t ? new Date(t).getTime() : null);

function inputsOf(c: CallObject): string[] {
  const s = c.spec;
  const refs = [
    ...(s.args ?? []),
    ...Object.values(s.kwargs ?? {}),
    ...(s.map?.items ?? []),
    ...(s.reduce?.items ?? []),
  ];
  const names = refs.map((r) => (r as { call?: string }).call).filter((n): n is string => !!n);
  const from = s.map?.itemsFrom ?? s.reduce?.itemsFrom;
  if (from) names.push(from);
  if (s.reduce?.initial && (s.reduce.initial as { call?: string }).call)
    names.push((s.reduce.initial as { call: string }).call);
  return [...new Set(names)];
}

const counts = (st: NonNullable<CallObject["status"]>) => ({
  attempts: st.attempts ?? 0,
  disruptions: st.disruptions ?? 0,
  infrastructure_failures: st.infrastructureFailures ?? 0,
});

function errorOf(c: CallObject): CallNode["error"] {
  const e = c.status?.error;
  if (!e) return null;
  return {
    type: e.type,
    message: e.message,
    traceback: e.traceback ?? null,
    reason: e.reason ?? null,
    cause: e.cause ?? null,
  };
}

export function callNode(c: CallObject, items: CallNode["items"] = null): CallNode {
  const st = c.status ?? {};
  return {
    name: c.metadata.name ?? "",
    function: c.metadata.annotations?.[ANNOTATION.functionName] ?? c.spec.function,
    kind: c.spec.map ? "map" : c.spec.reduce ? "reduce" : "call",
    parent: c.spec.parent ?? null,
    sequence: c.spec.sequence ?? null,
    phase: st.phase ?? "Pending",
    ...counts(st),
    pod: st.pod ?? null,
    created_at: ms(c.metadata.creationTimestamp as string | undefined),
    started_at: ms(st.startTime),
    finished_at: ms(st.completionTime),
    tail_call: st.tailCall ?? null,
    inputs: inputsOf(c),
    progress: st.progress ?? null,
    error: errorOf(c),
    items,
  };
}

const created = (c: CallObject) => new Date((c.metadata.creationTimestamp as string | undefined) ?? 0).getTime();
const nameOf = (c: CallObject) => c.metadata.name ?? "";
const isCollection = (c: CallObject) => !!(c.spec.map || c.spec.reduce);

/** Oldest first, then by sequence and name; creation times parsed once per distinct timestamp. */
function callOrder(): (a: CallObject, b: CallObject) => number {
  const times = new Map<string, number>();
  const at = (c: CallObject) => {
    const t = (c.metadata.creationTimestamp as string | undefined) ?? "";
    let ms = times.get(t);
    if (ms === undefined) times.set(t, (ms = created(c)));
    return ms;
  };
  return (a, b) =>
    at(a) - at(b) || (a.spec.sequence ?? 0) - (b.spec.sequence ?? 0) || nameOf(a).localeCompare(nameOf(b));
}

/**
 * The calls indexed: collections by name, their items by collection, every other call by name.
 * Items are put in a map by name only when a call names one as its parent (`find`): a
 * 100,000-item map adds no 100,000 entries to a map on every redraw.
 */
function indexCalls(all: CallObject[]) {
  const collections = new Map<string, CallObject>();
  for (const c of all) if (isCollection(c)) collections.set(nameOf(c), c);
  const children = new Map<string, CallObject[]>();
  const byName = new Map<string, CallObject>();
  for (const c of all) {
    const p = c.spec.parent;
    if (p === undefined || !collections.has(p)) {
      byName.set(nameOf(c), c);
      continue;
    }
    const kids = children.get(p);
    if (kids) kids.push(c);
    else children.set(p, [c]);
  }
  let itemsByName: Map<string, CallObject> | undefined;
  const find = (name: string): CallObject | undefined => {
    const c = collections.get(name) ?? byName.get(name);
    if (c) return c;
    if (!itemsByName) {
      itemsByName = new Map();
      for (const kids of children.values()) for (const k of kids) itemsByName.set(nameOf(k), k);
    }
    return itemsByName.get(name);
  };
  return { collections, children, find };
}

/** A collection's items by phase (in lifecycle order, whatever order they came in). */
function itemCounts(kids: CallObject[]): NonNullable<CallNode["items"]> {
  const count = new Map<string, number>();
  for (const k of kids) {
    const p = k.status?.phase ?? "Pending";
    count.set(p, (count.get(p) ?? 0) + 1);
  }
  const phases: Record<string, number> = {};
  for (const p of [...PHASES, ...count.keys()]) if (count.has(p)) phases[p] = count.get(p)!;
  return { total: kids.length, phases };
}

/**
 * The graph of a request from all its calls (root included), oldest first; map shards are
 * expanded into their items, calls created assigned shown Running. Only the calls drawn are sorted: folded items are counted, never ordered.
 */
export function requestGraph(given: CallObject[]): CallGraph {
  const all = shardReader.expand(given);
  const order = callOrder();
  const { collections, children, find } = indexCalls(all);

  // Items of a collection are folded, but up to MAX_FAILED_ITEMS failed ones (the first) stay.
  const kept = new Set<string>();
  const items = new Map<string, NonNullable<CallNode["items"]>>();
  for (const [name, c] of collections) {
    const kids = children.get(name) ?? [];
    items.set(nameOf(c), itemCounts(kids));
    kids
      .filter((k) => k.status?.phase === "Failed")
      .sort(order)
      .slice(0, MAX_FAILED_ITEMS)
      .forEach((k) => kept.add(nameOf(k)));
  }
  // A call is drawn when no call on its way up is a folded item. A folded item is known at once
  // (its parent is a collection): only other calls' answers are remembered.
  const visible = new Map<string, boolean>();
  const drawn = (c: CallObject, depth = 0): boolean => {
    const name = nameOf(c);
    const p = c.spec.parent;
    if (p !== undefined && collections.has(p) && !kept.has(name)) return false;
    const known = visible.get(name);
    if (known !== undefined) return known;
    const parent = p === undefined ? undefined : find(p);
    const v = !parent || depth >= 1000 || drawn(parent, depth + 1);
    visible.set(name, v);
    return v;
  };
  const shown = all.filter((c) => drawn(c)).sort(order);
  const calls = shown.slice(0, MAX_NODES).map((c) => callNode(c, items.get(nameOf(c)) ?? null));
  return { calls, hidden: all.length - calls.length };
}
