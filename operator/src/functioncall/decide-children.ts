// POST /calls/:name/children: a running call makes child calls (a whole map in one request).
// Idempotent by name: a re-run parent re-attaches to children that exist, and gets the outcome
// of those that finished.
import { type ChildCall, childName, type ValueRef } from "../../../protocol/index.js";
import { type Call, type Outcome, outcomeOf, requestOf } from "../engine/calls.js";
import { buildChild, sameChild } from "../engine/children.js";
import type { EngineCore } from "../engine/engine.js";
import type { PodIdentity } from "../engine/pods.js";
import { mapLimit } from "../engine/store.js";
import { jsonBytes } from "../engine/values.js";
import { ApiError } from "./errors.js";
import { currentAttempt } from "./reports.js";

const CREATE_CONCURRENCY = 64;

export async function createChildren(
  core: EngineCore,
  id: PodIdentity,
  parentName: string,
  attempt: number,
  calls: ChildCall[],
): Promise<{ finished: Outcome[] }> {
  const parent = currentAttempt(core, id, parentName, attempt);
  if (parent === "duplicate")
    throw new ApiError("stale_attempt", `call ${parentName}: attempt ${attempt} has ended; it can make no more calls`);
  const ns = id.namespace;
  const request = requestOf(parent);
  const root = core.graph.get(ns, request);
  if (!root) throw new ApiError("call_not_found", `request ${request}: its root call does not exist (deleted?)`);
  const batch = new Set(calls.map((c) => c.name));
  const finished: Outcome[] = [];
  const toCreate: Call[] = [];
  calls.forEach((c, i) => {
    const at = `body.calls[${i}]`;
    const want = childName(request, parentName, c.sequence);
    if (c.name !== want)
      throw new ApiError(
        "child_name_mismatch",
        `${at}.name: must be ${want}, derived from request ${request}, parent ${parentName} and sequence ${c.sequence}`,
      );
    checkChild(core, ns, request, batch, c, at);
    const existing = core.graph.get(ns, c.name);
    if (existing) {
      if (!sameChild(existing, parent, c))
        throw new ApiError(
          "name_conflict",
          `${at}.name: ${c.name} exists as a call of ${existing.spec.function} by ${existing.spec.parent ?? "(root)"}, not ${c.function} by ${parentName}`,
        );
      const o = outcomeOf(existing);
      if (o) finished.push(o);
      return;
    }
    const startAfter =
      c.delaySeconds !== undefined && c.delaySeconds > 0
        ? new Date(core.clock.now() + c.delaySeconds * 1000).toISOString()
        : undefined;
    const child = buildChild(parent, root, { ...c, ...(startAfter ? { startAfter } : {}) });
    const size = jsonBytes(child.spec);
    if (size > core.config.maxCallSpecBytes)
      throw new ApiError(
        "call_too_large",
        `${at}: the call's spec takes ${size} bytes, over the limit of ${core.config.maxCallSpecBytes}; pass large values as blobs`,
      );
    toCreate.push(child);
  });
  const created = await mapLimit(toCreate, CREATE_CONCURRENCY, (c) => core.store.create(c));
  for (const r of created) {
    // Lost a race with another report of the same parent: the child exists, maybe finished.
    const o = !r.created && r.call ? outcomeOf(r.call) : undefined;
    if (o) finished.push(o);
  }
  return { finished };
}

function checkChild(core: EngineCore, ns: string, request: string, batch: Set<string>, c: ChildCall, at: string): void {
  const limit = core.config.inlineValueLimitBytes;
  const check = (v: ValueRef, field: string) => {
    if (v.value !== undefined) {
      const n = jsonBytes(v.value);
      if (n > limit)
        throw new ApiError(
          "value_too_large",
          `${field}.value: ${n} bytes inline, over the limit of ${limit}; upload it with PUT /blobs and pass {blob}`,
        );
    }
    if (v.blob !== undefined && !v.blob.startsWith(`${ns}/`))
      throw new ApiError("invalid_body", `${field}.blob: must be a blob of namespace ${ns} (got ${v.blob})`);
    if (v.call !== undefined && !batch.has(v.call)) {
      const input = core.graph.get(ns, v.call);
      if (!input || requestOf(input) !== request)
        throw new ApiError("unknown_input", `${field}.call: no call named ${v.call} in request ${request}`);
    }
  };
  c.args.forEach((v, j) => check(v, `${at}.args[${j}]`));
  for (const [k, v] of Object.entries(c.kwargs)) check(v, `${at}.kwargs.${k}`);
  if (c.map && c.reduce) throw new ApiError("invalid_body", `${at}: map and reduce cannot both be set`);
  const coll = c.map ?? c.reduce;
  if (coll) {
    const kind = c.map ? "map" : "reduce";
    if ((coll.items === undefined) === (coll.itemsFrom === undefined))
      throw new ApiError("invalid_body", `${at}.${kind}: exactly one of items or itemsFrom must be set`);
    if (c.args.length > 0 || Object.keys(c.kwargs).length > 0)
      throw new ApiError("invalid_body", `${at}: args and kwargs must be empty when ${kind} is set`);
    coll.items?.forEach((v, j) => check(v, `${at}.${kind}.items[${j}]`));
    if (coll.itemsFrom !== undefined) check({ call: coll.itemsFrom }, `${at}.${kind}.itemsFrom`);
    if (c.reduce?.initial) check(c.reduce.initial, `${at}.reduce.initial`);
  }
}
