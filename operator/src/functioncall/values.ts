// Where outputs live: inline in status up to the limit, else a blob holding the value's JSON
// (a BlobDocument). And the items of a list output, for `itemsFrom`.
import { blobDocument, type ValueRef } from "../../../protocol/index.js";
import { type BlobStore, REF_LIMITS, checkValueRefs, newBlobRef, scopeOfRef } from "../blobs/index.js";
import type { ItemsResult, OutputDoc } from "./actions.js";

export const jsonBytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v) ?? "null", "utf8");

/** Whether a value must go to the blob store. */
export function needsBlob(doc: OutputDoc, limit: number): boolean {
  return doc.call === undefined && doc.blob === undefined && jsonBytes(doc) > limit;
}

export async function storeOutput(
  doc: OutputDoc,
  blobs: BlobStore,
  namespace: string,
  request: string,
  limit: number,
): Promise<ValueRef> {
  if (!needsBlob(doc, limit)) return doc;
  const ref = newBlobRef(namespace, request);
  await blobs.put(ref, Buffer.from(JSON.stringify(doc), "utf8"));
  return { blob: ref };
}

/** Items of an inline value: a JSON array's elements or a list form's items; undefined for a blob. */
export function inlineItems(output: ValueRef | undefined): ItemsResult | undefined {
  if (!output) return { error: "the call has no output" };
  if (output.blob !== undefined) return undefined;
  if (output.list !== undefined) return { items: output.list as ValueRef[] };
  if (output.value !== undefined && Array.isArray(output.value))
    return { items: output.value.map((value: unknown) => ({ value })) };
  // A str is iterated by code point, as Python's list(s) and the local runner do.
  if (typeof output.value === "string") return { items: [...output.value].map((value) => ({ value })) };
  if (output.pickle !== undefined)
    return { error: "its output is a pickled value (e.g. a tuple), not a list the operator can split" };
  return { error: "its output is not a list" };
}

/**
 * The items of a list output read from its blob `ref`. With `ref`, every blob the items name must
 * be of the same request and none may be the document itself (a cycle); nesting is capped.
 */
export function itemsOfDocument(bytes: Buffer, ref?: string): ItemsResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    return { error: "its output blob is not a value document" };
  }
  const doc = blobDocument.safeParse(parsed);
  if (!doc.success) return { error: "its output blob is not a value document" };
  const scope = ref === undefined ? undefined : scopeOfRef(ref);
  const bad = scope && checkValueRefs(doc.data, scope, REF_LIMITS, `blob ${ref}`);
  if (bad) return { error: `its output ${bad.message}` };
  const items = inlineItems(doc.data as ValueRef) ?? { error: "its output blob refers to another blob" };
  if (ref !== undefined && "items" in items && items.items.some((v) => v.blob === ref))
    return { error: `its output blob ${ref} lists itself as an item (a cycle)` };
  return items;
}
