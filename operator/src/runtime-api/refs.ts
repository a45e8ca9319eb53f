// Blob refs in what a pod hands in (outputs, child inputs, state): every ref, nested in lists at
// any depth, must be a blob of the request the value belongs to, "<namespace>/<request>/…".
// The request of a call is where the port files the call's uploads (blobToPut), which also
// checks that the call is assigned to the pod; it is asked only when a value names a blob.
import { type RefScope, REF_LIMITS, checkValueRefs, scopeOfRef } from "../blobs/index.js";
import { ApiError, orThrow } from "./errors.js";
import type { ChildCall, PodIdentity, RuntimePort } from "./port.js";

/** The request `call` belongs to (the call must be assigned to the pod). */
export function scopeOfCall(port: RuntimePort, pod: PodIdentity, call: string): RefScope {
  const ref = orThrow(port.blobToPut(pod, call));
  const scope = scopeOfRef(ref);
  if (!scope) throw new Error(`blobToPut answered ${ref}, not a ref "<namespace>/<request>/<id>"`);
  return scope;
}

/** Throws the first bad ref among `values` ([value, field path]): 403 for a foreign blob, else 400. */
export function assertRefs(values: Iterable<[unknown, string]>, scope: RefScope | (() => RefScope)): void {
  let known: RefScope | undefined;
  const scopeOnce = (): RefScope => (known ??= typeof scope === "function" ? scope() : scope);
  for (const [v, path] of values) {
    if (v === undefined) continue;
    const bad = checkValueRefs(v, scopeOnce, REF_LIMITS, path);
    if (bad) throw new ApiError(bad.rule === "scope" ? "forbidden_blob" : "invalid_body", bad.message);
  }
}

/** Every value of child calls, with its field path. */
export function* childValues(calls: ChildCall[]): Generator<[unknown, string]> {
  for (const [i, c] of calls.entries()) {
    const at = `body.calls[${i}]`;
    for (const [j, v] of c.args.entries()) yield [v, `${at}.args[${j}]`];
    for (const [k, v] of Object.entries(c.kwargs)) yield [v, `${at}.kwargs.${k}`];
    for (const [kind, coll] of [
      ["map", c.map],
      ["reduce", c.reduce],
    ] as const)
      for (const [j, v] of (coll?.items ?? []).entries()) yield [v, `${at}.${kind}.items[${j}]`];
    yield [c.reduce?.initial, `${at}.reduce.initial`];
  }
}
