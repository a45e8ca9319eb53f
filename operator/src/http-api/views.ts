// Pure mappings between FunctionCall objects and the v1 API's shapes (Tensorlake's field names).
import type { ValueRef } from "../../../protocol/index.js";
import type { ApplicationObj, CallObject } from "./types.js";

export type Outcome = null | "success" | { failure: string };

export interface RequestView {
  id: string;
  application: string;
  function: string;
  status: "pending" | "running" | "success" | "failure";
  outcome: Outcome;
  failure_reason: string | null;
  request_error: { message: string; function_name: string | null } | null;
  error: { type: string; message: string } | null;
  phase: string;
  created_at: string | null;
  finished_at: string | null;
  progress: { current: number; total: number; message?: string | undefined } | null;
}

const iso = (t: string | Date | undefined): string | null =>
  t === undefined ? null : typeof t === "string" ? t : t.toISOString();

export const isRoot = (c: CallObject): boolean => !c.spec.parent;

type CallError = NonNullable<NonNullable<CallObject["status"]>["error"]>;

// A Map, not an object literal: a phase must never match a prototype key.
const STATUS_OF_PHASE = new Map<string, RequestView["status"]>([
  ["Succeeded", "success"],
  ["Failed", "failure"],
  ["Cancelled", "failure"],
  ["Running", "running"],
]);

export function requestView(c: CallObject): RequestView {
  const s = c.status ?? {};
  const phase = s.phase ?? "Pending";
  const failed = phase === "Failed" || phase === "Cancelled";
  const reason = failed ? (s.error?.reason ?? (phase === "Cancelled" ? "cancelled" : "function_error")) : null;
  return {
    id: c.metadata.name ?? "",
    application: c.spec.application,
    function: c.spec.function,
    status: STATUS_OF_PHASE.get(phase) ?? "pending",
    outcome: phase === "Succeeded" ? "success" : failed ? { failure: reason ?? "function_error" } : null,
    failure_reason: reason,
    ...errorFields(failed ? s.error : undefined),
    phase,
    created_at: iso(c.metadata.creationTimestamp),
    finished_at: iso(s.completionTime),
    progress: s.progress ?? null,
  };
}

/** The error of a failed request; a request_error also names the function it blames. */
function errorFields(error: CallError | undefined): Pick<RequestView, "request_error" | "error"> {
  return {
    request_error:
      error?.reason === "request_error" ? { message: error.message, function_name: error.cause ?? null } : null,
    error: error ? { type: error.type, message: error.message } : null,
  };
}

export const finished = (c: CallObject): boolean =>
  ["Succeeded", "Failed", "Cancelled"].includes(c.status?.phase ?? "Pending");

export interface ApplicationView {
  name: string;
  namespace: string;
  entrypoint: string;
  functions: string[];
  ready: boolean;
  created_at: string | null;
}

export function applicationView(a: ApplicationObj): ApplicationView {
  const discovered = a.status?.discovered?.map((f) => f.name) ?? [];
  const configured = Object.keys(a.spec.functions ?? {});
  const functions = [...new Set([a.spec.entrypoint, ...discovered, ...configured])].sort();
  return {
    name: a.metadata.name ?? "",
    namespace: a.metadata.namespace ?? "",
    entrypoint: a.spec.entrypoint,
    functions,
    ready: a.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    created_at: iso(a.metadata.creationTimestamp),
  };
}

/** A request name: "<app stem>-<12 chars>", derived from the Idempotency-Key when there is one. */

/** Where a pickle hides in a client's JSON body, or undefined: pickle is never accepted over HTTP. */
export function findPickle(v: unknown, path = "body"): string | undefined {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = findPickle(v[i], `${path}[${i}]`);
      if (p) return p;
    }
  } else if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (k === "pickle") return `${path}.pickle`;
      const p = findPickle(x, `${path}.${k}`);
      if (p) return p;
    }
  }
  return undefined;
}

export type DecodedOutput = { kind: "json"; value: unknown } | { kind: "pickle"; bytes: Buffer };

export class PickledOutputError extends Error {}

/** An output in JSON form; a pickle anywhere makes it a pickle (whole) or a PickledOutputError (nested). */
export async function decodeOutput(
  out: ValueRef | undefined,
  readBlob: (ref: string) => Promise<Buffer | undefined>,
): Promise<DecodedOutput> {
  if (!out) return { kind: "json", value: null };
  if (out.blob !== undefined) {
    const bytes = await readBlob(out.blob);
    if (!bytes) throw new Error(`the output blob ${out.blob} is missing from the blob store`);
    return decodeOutput(JSON.parse(bytes.toString("utf8")) as ValueRef, readBlob);
  }
  if (out.pickle !== undefined) return { kind: "pickle", bytes: Buffer.from(out.pickle, "base64") };
  if (out.list !== undefined) {
    const items: unknown[] = [];
    for (const item of out.list) {
      const d = await decodeOutput(item as ValueRef, readBlob);
      if (d.kind === "pickle") throw new PickledOutputError("an item of the output list is a Python pickle");
      items.push(d.value);
    }
    return { kind: "json", value: items };
  }
  return { kind: "json", value: out.value ?? null };
}
