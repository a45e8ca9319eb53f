// Map and reduce calls never run in a pod: the engine expands them into children (map item i and
// reduce step k are named childName(request, <collection call>, i|k)) and assembles the output.
import { type CallError, childName, planShards, shardName, type ValueRef } from "../../../protocol/index.js";
import type { Action, CallView, OutputDoc } from "./actions.js";
import { fail, succeed } from "./attempts.js";
import { type Call, nameOf, phaseOf, requestOf } from "./calls.js";
import { buildChild, type ChildRequest } from "./children.js";
import { inputFailure } from "./inputs.js";

type Items = { items: ValueRef[] } | { actions: Action[] };

/** The items of a map/reduce: inline, or the list output of `itemsFrom` once it Succeeded. */
function collectionItems(call: Call, view: CallView, now: number): Items {
  const coll = (call.spec.map ?? call.spec.reduce)!;
  if (coll.itemsFrom === undefined) return { items: coll.items ?? [] };
  const src = view.call(coll.itemsFrom);
  if (!src || (phaseOf(src) !== "Succeeded" && phaseOf(src) !== "Failed" && phaseOf(src) !== "Cancelled"))
    return { actions: [{ type: "markWaiting", phase: "Blocked" }] };
  if (phaseOf(src) !== "Succeeded") return { actions: [fail(inputFailure(coll.itemsFrom, src), now)] };
  const r = view.items(coll.itemsFrom);
  if ("loading" in r) return { actions: [{ type: "loadItems", from: coll.itemsFrom }] };
  if ("error" in r) return { actions: [fail(invalidCall(`itemsFrom ${coll.itemsFrom}: ${r.error}`), now)] };
  return { items: r.items };
}

function invalidCall(message: string): CallError {
  return { type: "SDKUsageError", message, reason: "invalid_call" };
}

/**
 * The children of a collection call by index (item i / step k has sequence i / k). When some are
 * missing, the create action for them; names are hashed only then, so that settling a 2,000-item
 * map on each item's completion stays cheap.
 */
function ensureChildren(
  call: Call,
  view: CallView,
  n: number,
  build: (byIndex: (Call | undefined)[], root: Call) => Call[],
): { children: Call[] } | { actions: Action[] } {
  const byIndex: (Call | undefined)[] = new Array(n);
  let found = 0;
  for (const c of view.children(nameOf(call))) {
    const i = c.spec.sequence;
    if (i !== undefined && i < n && byIndex[i] === undefined) {
      byIndex[i] = c;
      found++;
    }
  }
  if (found === n) return { children: byIndex as Call[] };
  const root = view.call(requestOf(call));
  const waiting: Action = { type: "markWaiting", phase: "Running" };
  if (!root) return { actions: [waiting] }; // the request is going away: decideStop cancels this call
  return { actions: [{ type: "create", calls: build(byIndex, root) }, waiting] };
}

/** One object per missing child. */
const eachChild =
  (call: Call, describe: (i: number) => ChildRequest) =>
  (byIndex: (Call | undefined)[], root: Call): Call[] => {
    const missing: Call[] = [];
    for (let i = 0; i < byIndex.length; i++)
      if (byIndex[i] === undefined) missing.push(buildChild(call, root, describe(i)));
    return missing;
  };

/**
 * A large map's items live in shards (DESIGN.md, "Map shards"): the graph shows each item as a
 * child of the map once its shard exists. The shards not yet seen are created (one that exists is
 * reported back by the create).
 */
const eachShard =
  (call: Call, items: ValueRef[]) =>
  (byIndex: (Call | undefined)[], root: Call): Call[] => {
    const request = requestOf(call);
    const name = nameOf(call);
    return planShards(items)
      .map((p, j) => ({ p, j }))
      .filter(({ p }) => byIndex[p.offset] === undefined)
      .map(({ p, j }) => {
        const child = buildChild(call, root, {
          name: shardName(request, name, j),
          sequence: j,
          function: call.spec.function,
        });
        child.spec.shard = { offset: p.offset, items: items.slice(p.offset, p.offset + p.count) };
        return child;
      });
  };

/**
 * A sharded map whose shards are not all seen yet: the create of the shards not in the graph (looked
 * up by name, without listing the items of those that are), or undefined when every shard is there.
 */
function missingShards(call: Call, view: CallView, items: ValueRef[]): Action[] | undefined {
  const request = requestOf(call);
  const name = nameOf(call);
  const root = view.call(request);
  const plans = planShards(items);
  const byIndex: (Call | undefined)[] = new Array(items.length);
  let missing = 0;
  plans.forEach((p, j) => {
    const shard = view.call(shardName(request, name, j));
    if (shard) byIndex[p.offset] = shard;
    else missing++;
  });
  if (missing === 0) return undefined;
  const waiting: Action = { type: "markWaiting", phase: "Running" };
  if (!root) return [waiting];
  return [{ type: "create", calls: eachShard(call, items)(byIndex, root) }, waiting];
}

/**
 * While a collection runs, its children's counts decide without listing them (each item's
 * completion requeues the collection: this keeps that O(1) until the last one).
 */
function quickSettle(call: Call, view: CallView, n: number, now: number): Action[] | undefined {
  const s = view.childStats(nameOf(call));
  if (s.count < n) return undefined;
  if (s.failed !== undefined) {
    const c = view.call(s.failed);
    if (c) return [fail(inputFailure(s.failed, c), now)];
  }
  if (s.succeeded < n) return [{ type: "markWaiting", phase: "Running" }];
  return undefined;
}

/** The outcome of a collection whose children all exist: first failure, or all Succeeded. */
function settle(children: Call[], now: number, onSuccess: () => Action): Action[] {
  let done = 0;
  for (const c of children) {
    const p = phaseOf(c);
    if (p === "Failed" || p === "Cancelled") return [fail(inputFailure(nameOf(c), c), now)];
    if (p === "Succeeded") done++;
  }
  if (done === children.length) return [onSuccess()];
  return [{ type: "markWaiting", phase: "Running" }];
}

export function decideMap(call: Call, view: CallView, now: number): Action[] {
  const r = collectionItems(call, view, now);
  if ("actions" in r) return r.actions;
  if (r.items.length === 0) return [succeed({ value: [] }, now)];
  const request = requestOf(call);
  const name = nameOf(call);
  const items = r.items;
  const quick = quickSettle(call, view, items.length, now);
  if (quick) return quick;
  // Every item Succeeded: the outputs are read from the items' states without decoding each item
  // into a call (100,000 of them held ~100 MiB at once).
  if (view.childStats(name).count >= items.length) {
    const outputs = view.childOutputs(name, items.length);
    if (outputs) return [mapSucceeded(outputs, now)];
  }
  const sharded = items.length >= view.shardMinItems;
  if (sharded && view.childStats(name).count < items.length) {
    const missing = missingShards(call, view, items);
    if (missing) return missing;
  }
  const build = sharded
    ? eachShard(call, items)
    : eachChild(call, (i) => ({
        name: childName(request, name, i),
        sequence: i,
        function: call.spec.function,
        args: [items[i]!],
      }));
  const e = ensureChildren(call, view, items.length, build);
  if ("actions" in e) return e.actions;
  const children = e.children;
  return settle(children, now, () => ({ ...succeed({ value: null }, now), output: assemble(children) }));
}

/** A map's output: one JSON array when every item is JSON, else the list form of the item outputs. */
export function assemble(children: Call[]): OutputDoc {
  return assembleOutputs(children.map((c) => c.status?.output ?? { value: null }));
}

function mapSucceeded(outputs: ValueRef[], now: number): Action {
  const done = succeed({ value: null }, now);
  return done.type === "status" ? { ...done, output: assembleOutputs(outputs) } : done;
}

export function assembleOutputs(outputs: ValueRef[]): OutputDoc {
  if (outputs.every((o) => o.value !== undefined)) return { value: outputs.map((o) => o.value) };
  return { list: outputs as Record<string, unknown>[] };
}

export function decideReduce(call: Call, view: CallView, now: number): Action[] {
  const r = collectionItems(call, view, now);
  if ("actions" in r) return r.actions;
  const initial = call.spec.reduce!.initial;
  const items = r.items;
  if (items.length === 0 && initial === undefined)
    return [
      fail(
        invalidCall(
          `${call.spec.function}.reduce(items) got an empty list and no initial value; pass an initial value or at least one item`,
        ),
        now,
      ),
    ];
  // Nothing to fold: the output is the single value (a future's output once it Succeeded).
  if (items.length + (initial === undefined ? 0 : 1) === 1) return passThrough((initial ?? items[0])!, view, now);
  const request = requestOf(call);
  const name = nameOf(call);
  const rest = initial === undefined ? items.slice(1) : items;
  const first: ValueRef = (initial ?? items[0])!;
  const stepName = (k: number) => childName(request, name, k);
  const quick = quickSettle(call, view, rest.length, now);
  if (quick) return quick;
  const e = ensureChildren(
    call,
    view,
    rest.length,
    eachChild(call, (k) => ({
      name: stepName(k),
      sequence: k,
      function: call.spec.function,
      args: [k === 0 ? first : { call: stepName(k - 1) }, rest[k]!],
    })),
  );
  if ("actions" in e) return e.actions;
  const steps = e.children;
  const last = steps[steps.length - 1]!;
  return settle(steps, now, () => succeed(last.status?.output ?? { value: null }, now));
}

function passThrough(v: ValueRef, view: CallView, now: number): Action[] {
  if (v.call === undefined) return [succeed(v, now)];
  const src = view.call(v.call);
  const p = src ? phaseOf(src) : undefined;
  if (src && p === "Succeeded") return [succeed(src.status?.output ?? { value: null }, now)];
  if (src && (p === "Failed" || p === "Cancelled")) return [fail(inputFailure(v.call, src), now)];
  return [{ type: "markWaiting", phase: "Blocked" }];
}
