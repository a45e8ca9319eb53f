// Where outputs live: inline in status up to the limit, else a blob holding a BlobDocument.
// And reading the items of a list output for `itemsFrom`.
import type { ValueRef } from "../api/v1alpha1/index.js";
import { type BlobStore, newBlobRef } from "../runtime-api/blobstore.js";
import { blobDocument } from "../runtime-api/messages.js";
import type { ItemsResult, OutputDoc } from "./actions.js";

export const jsonBytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v) ?? "null", "utf8");

/** Whether a value must go to the blob store (a list document always does). */
export function needsBlob(doc: OutputDoc, limit: number): boolean {
  if ("list" in doc) return true;
  if (doc.value !== undefined) return jsonBytes(doc.value) > limit;
  if (doc.pickle !== undefined) return (doc.pickle.length * 3) / 4 > limit;
  return false;
}

export async function storeOutput(
  doc: OutputDoc,
  blobs: BlobStore,
  namespace: string,
  request: string,
  limit: number,
): Promise<ValueRef> {
  if (!needsBlob(doc, limit)) return doc as ValueRef;
  const ref = newBlobRef(namespace, request);
  await blobs.put(ref, Buffer.from(JSON.stringify(doc), "utf8"));
  return { blob: ref };
}

/** Items of an inline output: a JSON list only (anything else cannot be split by the operator). */
export function inlineItems(output: ValueRef | undefined): ItemsResult | undefined {
  if (!output) return { error: "the call has no output" };
  if (output.value !== undefined)
    return Array.isArray(output.value)
      ? { items: output.value.map((value: unknown) => ({ value })) }
      : { error: "its output is not a list" };
  if (output.pickle !== undefined)
    return { error: "its output is a pickled value; itemsFrom needs a JSON list or a map's output" };
  return undefined; // a blob: read it
}

export function itemsOfDocument(bytes: Buffer): ItemsResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    return { error: "its output blob is not a value document" };
  }
  const doc = blobDocument.safeParse(parsed);
  if (!doc.success) return { error: "its output blob is not a value document" };
  if ("list" in doc.data) return { items: doc.data.list };
  if ("value" in doc.data && Array.isArray(doc.data.value))
    return { items: doc.data.value.map((value: unknown) => ({ value })) };
  return { error: "its output is not a list (or is a pickled value)" };
}
