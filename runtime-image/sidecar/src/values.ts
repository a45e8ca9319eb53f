// Value forms at the socket boundary. The worker speaks {json}, {pickle}, {list}, {raw}, {call},
// {blob} (PROTOCOL.md §4); the operator API the CRD forms {value}, {pickle}, {list}, {raw}, {call},
// {blob}. Only `json` ↔ `value` differs, recursively inside `list`; {raw} (bytes with a MIME type,
// a request input or output that is not JSON) passes through unchanged.
import type { SpillRef, ValueRef } from "../../../protocol/index.js";

/** A {raw} form's payload: base64 bytes and their MIME type. */
export type RawPayload = NonNullable<ValueRef["raw"]>;

export type WorkerForm =
  | { json: unknown }
  | { pickle: string }
  | { list: WorkerForm[] }
  | { raw: RawPayload }
  | { call: string }
  | { blob: string }
  | { spill: SpillRef };

export type OperatorValue = ValueRef;

/** A value in the wrong shape: names where it was found and the rule. */
export class ValueFormError extends Error {
  override name = "ValueFormError";
}

const FORMS = ["json", "pickle", "list", "raw", "call", "blob"] as const;
// `spill` only from blobs.ts: a blob it fetched into a file for the worker (PROTOCOL.md §4).
const VALUES = ["value", "pickle", "list", "raw", "call", "blob", "spill"] as const;

function onlyKey(v: unknown, keys: readonly string[], where: string): string {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ValueFormError(`${where}: must be an object with one of ${keys.join(", ")}`);
  }
  const present = keys.filter((k) => k in v && (v as Record<string, unknown>)[k] !== undefined);
  if (present.length !== 1) {
    throw new ValueFormError(
      `${where}: exactly one of ${keys.join(", ")} must be set (got ${Object.keys(v).join(", ") || "none"})`,
    );
  }
  return present[0]!;
}

function str(v: unknown, where: string): string {
  if (typeof v !== "string") throw new ValueFormError(`${where}: must be a string`);
  return v;
}

/** A {raw} payload, checked and copied with only its two fields. */
export function rawPayload(v: unknown, where: string): RawPayload {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ValueFormError(`${where}: must be an object with contentType and data`);
  }
  const r = v as Record<string, unknown>;
  const contentType = str(r.contentType, `${where}.contentType`);
  if (!contentType) throw new ValueFormError(`${where}.contentType: must be a non-empty string`);
  return { contentType, data: str(r.data, `${where}.data`) };
}

/** Worker form → operator value (json → value, recursively inside list). */
export function toOperator(form: unknown, where = "value"): OperatorValue {
  const key = onlyKey(form, FORMS, where);
  const v = (form as Record<string, unknown>)[key];
  switch (key) {
    case "json":
      return { value: v };
    case "list":
      if (!Array.isArray(v)) throw new ValueFormError(`${where}.list: must be an array`);
      return { list: v.map((item, i) => toOperator(item, `${where}.list[${i}]`) as Record<string, unknown>) };
    case "pickle":
      return { pickle: str(v, `${where}.pickle`) };
    case "raw":
      return { raw: rawPayload(v, `${where}.raw`) };
    case "call":
      return { call: str(v, `${where}.call`) };
    default:
      return { blob: str(v, `${where}.blob`) };
  }
}

/**
 * Operator value → worker form (value → json, recursively inside list). The worker never
 * receives `call` or `blob`: callers resolve them first (see blobs.ts), and meeting one here is
 * a bug in the sidecar or the operator.
 */
export function toWorker(value: unknown, where = "value"): WorkerForm {
  const key = onlyKey(value, VALUES, where);
  const v = (value as Record<string, unknown>)[key];
  switch (key) {
    case "value":
      return { json: v };
    case "list":
      if (!Array.isArray(v)) throw new ValueFormError(`${where}.list: must be an array`);
      return { list: v.map((item, i) => toWorker(item, `${where}.list[${i}]`)) };
    case "pickle":
      return { pickle: str(v, `${where}.pickle`) };
    case "raw":
      return { raw: rawPayload(v, `${where}.raw`) };
    case "spill":
      return { spill: v as SpillRef };
    default:
      throw new ValueFormError(`${where}: a {${key}} value cannot be sent to the worker (it must be resolved first)`);
  }
}

/** Whether an operator value holds a blob reference anywhere (top level or inside a list). */
export function hasBlob(value: OperatorValue): boolean {
  if (value.blob !== undefined) return true;
  return Array.isArray(value.list) && value.list.some((item) => hasBlob(item as OperatorValue));
}

/** Bytes the value takes inline (its JSON), what the inline limit is measured on. */
export const inlineSize = (value: OperatorValue): number => Buffer.byteLength(JSON.stringify(value), "utf8");
