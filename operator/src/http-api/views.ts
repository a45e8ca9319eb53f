// Pure mappings between FunctionCall objects and the v1 API's shapes (Tensorlake's field names).
import { Readable } from "node:stream";
import { ANNOTATION, type ValueRef } from "../../../protocol/index.js";
import { BlobRefError, type RefScope, RefTrail } from "../blobs/index.js";
import { openRawDocument } from "./raw-stream.js";
import type { ApplicationObj, CallObject } from "./types.js";

export type Outcome = null | "success" | { failure: string };

export interface RequestView {
  id: string;
  application: string;
  function: string;
  status: "pending" | "running" | "success" | "failure";
  outcome: Outcome;
  application_version: string;
  failure_reason: string | null;
  request_error: { message: string; function_name: string } | null;
  error: { type: string; message: string } | null;
  phase: string;
  /** Milliseconds since the epoch (Tensorlake's RequestMetadata). */
  created_at: number;
  finished_at: number | null;
  progress: { current: number; total: number; message?: string | undefined } | null;
  /** Why an unfinished request cannot start: its application's code failed to load. */
  waiting: { reason: "code_load_failed"; message: string } | null;
}

/** What a view needs beyond the call: the blamed call's function and the application's version. */
export interface ViewContext {
  call?: (name: string) => CallObject | undefined;
  version?: string;
  /** The application's code-load failure, if its current code failed to load. */
  codeLoadFailure?: string | undefined;
}

/** The CodeLoaded=False condition's message, for the code now deployed (undefined if none). */
export function codeLoadFailure(a: ApplicationObj): string | undefined {
  const c = a.status?.conditions?.find((x) => x.type === "CodeLoaded" && x.status === "False");
  // A failure seen for an older spec says nothing of the code now deployed.
  const stale = c?.observedGeneration !== undefined && c.observedGeneration < (a.metadata.generation ?? 0);
  if (!c || stale) return undefined;
  return c.message || `the code of application ${a.metadata.name} failed to load (${c.reason ?? "CodeLoaded=False"})`;
}

const ms = (t: string | Date | undefined): number | null =>
  t === undefined ? null : (typeof t === "string" ? new Date(t) : t).getTime();

export const isRoot = (c: CallObject): boolean => !c.spec.parent;

type CallError = NonNullable<NonNullable<CallObject["status"]>["error"]>;

// A Map, not an object literal: a phase must never match a prototype key.
const STATUS_OF_PHASE = new Map<string, RequestView["status"]>([
  ["Succeeded", "success"],
  ["Failed", "failure"],
  ["Cancelled", "failure"],
  ["Running", "running"],
]);

const functionOf = (c: CallObject): string => c.metadata.annotations?.[ANNOTATION.functionName] ?? c.spec.function;

/** Why a finished request failed, or null while it runs or after a success. */
function failureReason(phase: string, error: CallError | undefined): string | null {
  if (phase !== "Failed" && phase !== "Cancelled") return null;
  return error?.reason ?? (phase === "Cancelled" ? "cancelled" : "function_error");
}

export function requestView(c: CallObject, ctx: ViewContext = {}): RequestView {
  const s = c.status ?? {};
  const phase = s.phase ?? "Pending";
  const reason = failureReason(phase, s.error);
  const failed = reason !== null;
  return {
    id: c.metadata.name ?? "",
    application: c.spec.application,
    function: c.spec.function,
    status: STATUS_OF_PHASE.get(phase) ?? "pending",
    outcome: phase === "Succeeded" ? "success" : failed ? { failure: reason } : null,
    application_version: ctx.version ?? "",
    failure_reason: reason,
    ...errorFields(c, failed ? s.error : undefined, ctx),
    phase,
    created_at: ms(c.metadata.creationTimestamp) ?? 0,
    finished_at: ms(s.completionTime),
    progress: s.progress ?? null,
    waiting:
      !isFinishedPhase(phase) && ctx.codeLoadFailure
        ? { reason: "code_load_failed", message: ctx.codeLoadFailure }
        : null,
  };
}

const isFinishedPhase = (phase: string): boolean => ["Succeeded", "Failed", "Cancelled"].includes(phase);

/**
 * The error of a failed request. A request_error names the function that raised it: the root's
 * error.cause is the call that raised it (absent when the root raised it itself).
 */
function errorFields(
  root: CallObject,
  error: CallError | undefined,
  ctx: ViewContext,
): Pick<RequestView, "request_error" | "error"> {
  const culprit = error?.cause ? ctx.call?.(error.cause) : undefined;
  return {
    request_error:
      error?.reason === "request_error" ? { message: error.message, function_name: functionOf(culprit ?? root) } : null,
    error: error ? { type: error.type, message: error.message } : null,
  };
}

export const finished = (c: CallObject): boolean => isFinishedPhase(c.status?.phase ?? "Pending");

/** Where a pickle hides in a client's JSON body, or undefined: pickle is never accepted over HTTP. */
export function findPickle(v: unknown, path = "body"): string | undefined {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = findPickle(v[i], `${path}[${i}]`);
      if (p) return p;
    }
  } else if (v !== null && typeof v === "object" && !ArrayBuffer.isView(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (k === "pickle") return `${path}.pickle`;
      const p = findPickle(x, `${path}.${k}`);
      if (p) return p;
    }
  }
  return undefined;
}

export type DecodedOutput =
  | { kind: "json"; value: unknown }
  | { kind: "pickle"; bytes: Buffer }
  /** Raw bytes (a File): a stream when they come from a blob, decoded as it is read. */
  | { kind: "raw"; contentType: string; bytes: Buffer | Readable };

/** Reads a blob whole, or opens it as a stream (undefined when it is not there). */
export interface OutputBlobs {
  read(ref: string): Promise<Buffer | undefined>;
  open?(ref: string): Promise<AsyncIterable<Uint8Array> | undefined>;
}

/** An item of an output list has no JSON form (a pickle or raw bytes). */
export class PickledOutputError extends Error {}

/**
 * The answer to an output that cannot be served: a pickle or File inside a list (406), or a blob
 * the application wrote that names a foreign blob, itself or too deep a chain (409; never followed).
 */
export function outputRefusal(
  e: unknown,
  request: string,
): { status: 406 | 409; body: { code: string; message: string } } | undefined {
  if (e instanceof PickledOutputError)
    return { status: 406, body: { code: "not_acceptable", message: `${e.message}: it has no JSON form` } };
  if (e instanceof BlobRefError)
    return {
      status: 409,
      body: { code: "invalid_output", message: `request ${request}: ${e.message}; the output cannot be served` },
    };
  return undefined;
}

/**
 * An output in JSON form; a pickle or raw bytes (a File) are answered whole, and have no JSON
 * form inside a list (PickledOutputError). Every blob ref on the way must be a blob of the
 * request (`scope`); chains and nesting are capped and a blob that refers back to itself is a
 * BlobRefError, never a loop. With `blobs.open`, a blob holding a raw document (data last) is
 * not read into memory: its bytes are a stream, decoded as the answer is sent.
 */
export async function decodeOutput(
  out: ValueRef | undefined,
  blobs: OutputBlobs | ((ref: string) => Promise<Buffer | undefined>),
  scope: RefScope,
): Promise<DecodedOutput> {
  return decodeAt(out, typeof blobs === "function" ? { read: blobs } : blobs, RefTrail.start(scope), "output", false);
}

/** A blob's document: parsed JSON, or the bytes of a raw document as a stream (only at the top). */
async function readDocument(
  ref: string,
  blobs: OutputBlobs,
  streamRaw: boolean,
): Promise<{ doc: Buffer } | { raw: { contentType: string; bytes: Readable } } | undefined> {
  if (!streamRaw || !blobs.open) {
    const bytes = await blobs.read(ref);
    return bytes && { doc: bytes };
  }
  const source = await blobs.open(ref);
  if (!source) return undefined;
  const opened = await openRawDocument(source);
  if (opened.kind === "other") return { doc: await opened.whole() };
  return { raw: { contentType: opened.contentType, bytes: Readable.from(opened.bytes, { objectMode: false }) } };
}

/** The value in blob `ref`: a File streamed (outside lists), else its document decoded. */
async function decodeBlob(
  ref: string,
  blobs: OutputBlobs,
  trail: RefTrail,
  path: string,
  inList: boolean,
): Promise<DecodedOutput> {
  const inner = trail.enter(ref, `${path}.blob`);
  // Inside a list a File is refused anyway: no stream is opened for it.
  const read = await readDocument(ref, blobs, !inList);
  if (!read) throw new Error(`the output blob ${ref} is missing from the blob store`);
  if ("raw" in read) return { kind: "raw", ...read.raw };
  let doc: unknown;
  try {
    doc = JSON.parse(read.doc.toString("utf8"));
  } catch {
    throw new BlobRefError({
      path: `${path}.blob`,
      rule: "shape",
      message: `${path}.blob: blob ${ref} does not hold a JSON value document`,
    });
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new BlobRefError({
      path: `${path}.blob`,
      rule: "shape",
      message: `${path}.blob: blob ${ref} does not hold a value document`,
    });
  return decodeAt(doc as ValueRef, blobs, inner, `${path}.blob`, inList);
}

async function decodeAt(
  out: ValueRef | undefined,
  blobs: OutputBlobs,
  trail: RefTrail,
  path: string,
  inList: boolean,
): Promise<DecodedOutput> {
  if (!out) return { kind: "json", value: null };
  if (out.blob !== undefined) return decodeBlob(out.blob, blobs, trail, path, inList);
  if (out.pickle !== undefined) return { kind: "pickle", bytes: Buffer.from(out.pickle, "base64") };
  if (out.raw !== undefined)
    return { kind: "raw", contentType: out.raw.contentType, bytes: Buffer.from(out.raw.data, "base64") };
  if (out.list !== undefined) {
    const inner = trail.nest(`${path}.list`);
    const items: unknown[] = [];
    for (const [i, item] of out.list.entries()) {
      const d = await decodeAt(item as ValueRef, blobs, inner, `${path}.list[${i}]`, true);
      if (d.kind !== "json")
        throw new PickledOutputError(
          `an item of the output list is ${d.kind === "pickle" ? "a Python pickle" : "raw bytes (a File)"}`,
        );
      items.push(d.value);
    }
    return { kind: "json", value: items };
  }
  return { kind: "json", value: out.value ?? null };
}
