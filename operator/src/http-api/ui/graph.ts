// A request's calls as the web view draws them: one node per call, map/reduce items folded into
// counts on their collection call (a 10,000-item map stays one node), failed items kept so their
// errors stay visible. Pure: the routes feed it the cached FunctionCalls of one request.
import { ANNOTATION } from "../../../../protocol/index.js";
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

/** The graph of a request from all its calls (root included), oldest first. */
export function requestGraph(all: CallObject[]): CallGraph {
  // Creation times parsed once, not per comparison (a 10,000-call request sorts ~130,000 times).
  const at = new Map(all.map((c) => [c, created(c)]));
  const sorted = [...all].sort(
    (a, b) =>
      at.get(a)! - at.get(b)! ||
      (a.spec.sequence ?? 0) - (b.spec.sequence ?? 0) ||
      (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""),
  );
  const byName = new Map(sorted.map((c) => [c.metadata.name ?? "", c]));
  const children = new Map<string, CallObject[]>();
  for (const c of sorted) {
    const p = c.spec.parent;
    if (!p) continue;
    const kids = children.get(p);
    if (kids) kids.push(c);
    else children.set(p, [c]);
  }
  const isCollection = (c: CallObject | undefined) => !!(c?.spec.map || c?.spec.reduce);

  // Items of a collection are folded, but up to MAX_FAILED_ITEMS failed ones stay.
  const kept = new Set<string>();
  const items = new Map<string, NonNullable<CallNode["items"]>>();
  for (const c of sorted) {
    if (!isCollection(c)) continue;
    const kids = children.get(c.metadata.name ?? "") ?? [];
    const phases: Record<string, number> = {};
    for (const k of kids) phases[k.status?.phase ?? "Pending"] = (phases[k.status?.phase ?? "Pending"] ?? 0) + 1;
    items.set(c.metadata.name ?? "", { total: kids.length, phases });
    kids
      .filter((k) => k.status?.phase === "Failed")
      .slice(0, MAX_FAILED_ITEMS)
      .forEach((k) => kept.add(k.metadata.name ?? ""));
  }
  // A call is drawn when no call on its way up is a folded item.
  const visible = new Map<string, boolean>();
  const drawn = (c: CallObject, depth = 0): boolean => {
    const name = c.metadata.name ?? "";
    const known = visible.get(name);
    if (known !== undefined) return known;
    const parent = c.spec.parent ? byName.get(c.spec.parent) : undefined;
    let v = true;
    if (parent && depth < 1000) v = (!isCollection(parent) || kept.has(name)) && drawn(parent, depth + 1);
    visible.set(name, v);
    return v;
  };
  const shown = sorted.filter((c) => drawn(c));
  const calls = shown.slice(0, MAX_NODES).map((c) => callNode(c, items.get(c.metadata.name ?? "") ?? null));
  return { calls, hidden: sorted.length - calls.length };
}
