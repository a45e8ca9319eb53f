// An Idempotency-Key names the same request for the same inputs. The root call keeps a hash of the
// inputs it was created with, so a key reused with other inputs answers 422 instead of silently
// returning the first request's outcome for a different question.
import { createHash } from "node:crypto";
import { ANNOTATION } from "../../../protocol/index.js";
import { type Inputs, RawInput, StoredRaw } from "./inputs.js";
import type { CallObject } from "./types.js";

/**
 * JSON with object keys sorted and raw bytes as {raw}: the same inputs give the same text. A File
 * streamed to the blob store (over 64 KiB) counts by the sha256 of its bytes, computed as it arrived.
 */
function canonical(v: unknown): unknown {
  if (v instanceof RawInput) return { raw: { contentType: v.contentType, data: v.data.toString("base64") } };
  if (v instanceof StoredRaw) return { raw: { contentType: v.contentType, sha256: v.sha256 ?? v.ref } };
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = canonical((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}

/** sha256 (hex) of the normalised inputs and the function they go to. */
export function inputsHash(fn: string, inputs: Inputs): string {
  const text = JSON.stringify({ function: fn, args: canonical(inputs.args), kwargs: canonical(inputs.kwargs) });
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Why an existing root call is not the request a retry asks for, or undefined when it is. A call
 * made before the hash was recorded matches any inputs (as before).
 */
export function idempotencyMismatch(existing: CallObject | undefined, hash: string): string | undefined {
  const had = existing?.metadata.annotations?.[ANNOTATION.idempotencyBody];
  if (!had || had === hash) return undefined;
  return `header Idempotency-Key: already used for request ${existing?.metadata.name} with different inputs; a key names one request with one body (send a new key for new inputs)`;
}
