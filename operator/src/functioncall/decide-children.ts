// POST /calls/:name/children decided: a running call makes child calls (a whole map in one
// request). Idempotent by name: a re-run parent re-attaches to children that exist, and gets the
// outcome of those that finished. Pure: the engine applies the `create` it returns.
import { type ChildCall, childName, type ValueRef } from "../../../protocol/index.js";
import type { Action, CallView } from "./actions.js";
import { type Call, type Outcome, outcomeOf, requestOf } from "./calls.js";
import { buildChild, sameChild } from "./children.js";
import { checkBlobRef, currentAttempt } from "./decide-report.js";
import { type Rejection, reject } from "./rejections.js";
import { jsonBytes } from "./values.js";

export interface ChildrenRequest {
  pod: string;
  parent: string;
  attempt: number;
  calls: ChildCall[];
}

export interface ChildrenDecision {
  /** The create of the children that do not exist yet (none when all do). */
  actions: Action[];
  /** Outcomes of the named children that exist and have finished. */
  finished: Outcome[];
}

/** What checking one child reads: its batch (inputs may name siblings), the request, the view. */
interface Scope {
  parent: Call;
  root: Call;
  request: string;
  batch: Set<string>;
  view: CallView;
  now: number;
}

export function decideChildren(
  parent: Call | undefined,
  req: ChildrenRequest,
  view: CallView,
  now: number,
): ChildrenDecision | Rejection {
  const p = currentAttempt(parent, { pod: req.pod, name: req.parent, attempt: req.attempt });
  if (p === "duplicate")
    return reject("stale_attempt", `call ${req.parent}: attempt ${req.attempt} has ended; it can make no more calls`);
  if ("rejected" in p) return p;
  const request = requestOf(p);
  const root = view.call(request);
  if (!root) return reject("call_not_found", `request ${request}: its root call does not exist (deleted?)`);
  const scope: Scope = { parent: p, root, request, batch: new Set(req.calls.map((c) => c.name)), view, now };
  const finished: Outcome[] = [];
  const create: Call[] = [];
  for (const [i, c] of req.calls.entries()) {
    const d = decideChild(scope, c, `body.calls[${i}]`);
    if ("rejected" in d) return d;
    if (d.create) create.push(d.create);
    if (d.finished) finished.push(d.finished);
  }
  return { actions: create.length > 0 ? [{ type: "create", calls: create }] : [], finished };
}

/** One child: its name, its inputs and size; an existing child of that name is re-attached. */
function decideChild(s: Scope, c: ChildCall, at: string): { create?: Call; finished?: Outcome } | Rejection {
  const parentName = s.parent.metadata.name ?? "";
  const want = childName(s.request, parentName, c.sequence);
  if (c.name !== want)
    return reject(
      "child_name_mismatch",
      `${at}.name: must be ${want}, derived from request ${s.request}, parent ${parentName} and sequence ${c.sequence}`,
    );
  const bad = checkChild(s, c, at);
  if (bad) return bad;
  const existing = s.view.call(c.name);
  if (existing) {
    if (!sameChild(existing, s.parent, c))
      return reject(
        "name_conflict",
        `${at}.name: ${c.name} exists as a call of ${existing.spec.function} by ${existing.spec.parent ?? "(root)"}, not ${c.function} by ${parentName}`,
      );
    const o = outcomeOf(existing);
    return o ? { finished: o } : {};
  }
  const startAfter =
    c.delaySeconds !== undefined && c.delaySeconds > 0
      ? new Date(s.now + c.delaySeconds * 1000).toISOString()
      : undefined;
  const child = buildChild(s.parent, s.root, { ...c, ...(startAfter ? { startAfter } : {}) });
  const size = jsonBytes(child.spec);
  const limit = s.view.maxCallSpecBytes;
  if (size > limit)
    return reject(
      "call_too_large",
      `${at}: the call's spec takes ${size} bytes, over the limit of ${limit}; pass large values as blobs`,
    );
  return { create: child };
}

/** A child's inputs: inline sizes, blob namespaces, `{call}` references, the map/reduce form. */
function checkChild(s: Scope, c: ChildCall, at: string): Rejection | undefined {
  const values: [ValueRef, string][] = [
    ...c.args.map((v, j): [ValueRef, string] => [v, `${at}.args[${j}]`]),
    ...Object.entries(c.kwargs).map(([k, v]): [ValueRef, string] => [v, `${at}.kwargs.${k}`]),
  ];
  for (const [v, field] of values) {
    const bad = checkValue(s, v, field);
    if (bad) return bad;
  }
  return checkCollection(s, c, at);
}

function checkCollection(s: Scope, c: ChildCall, at: string): Rejection | undefined {
  if (c.map && c.reduce) return reject("invalid_body", `${at}: map and reduce cannot both be set`);
  const coll = c.map ?? c.reduce;
  if (!coll) return undefined;
  const kind = c.map ? "map" : "reduce";
  if ((coll.items === undefined) === (coll.itemsFrom === undefined))
    return reject("invalid_body", `${at}.${kind}: exactly one of items or itemsFrom must be set`);
  if (c.args.length > 0 || Object.keys(c.kwargs).length > 0)
    return reject("invalid_body", `${at}: args and kwargs must be empty when ${kind} is set`);
  const values: [ValueRef, string][] = (coll.items ?? []).map((v, j) => [v, `${at}.${kind}.items[${j}]`]);
  if (coll.itemsFrom !== undefined) values.push([{ call: coll.itemsFrom }, `${at}.${kind}.itemsFrom`]);
  if (c.reduce?.initial) values.push([c.reduce.initial, `${at}.reduce.initial`]);
  for (const [v, field] of values) {
    const bad = checkValue(s, v, field);
    if (bad) return bad;
  }
  return undefined;
}

function checkValue(s: Scope, v: ValueRef, field: string): Rejection | undefined {
  const limit = s.view.inlineValueLimitBytes;
  if (v.value !== undefined) {
    const n = jsonBytes(v.value);
    if (n > limit)
      return reject(
        "value_too_large",
        `${field}.value: ${n} bytes inline, over the limit of ${limit}; upload it with PUT /blobs and pass {blob}`,
      );
  }
  const foreign = checkBlobRef(v, s.view.namespace, field);
  if (foreign) return foreign;
  if (v.call !== undefined && !s.batch.has(v.call)) {
    const input = s.view.call(v.call);
    if (!input || requestOf(input) !== s.request)
      return reject("unknown_input", `${field}.call: no call named ${v.call} in request ${s.request}`);
  }
  return undefined;
}
