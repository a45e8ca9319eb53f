// Large values: the worker sends everything inline; values over the operator's inline limit go
// to the blob store and travel as {blob}. Blobs in what the worker is given are fetched and
// inlined, so the worker never sees one. A blob holds a BlobDocument (protocol/src/runtime-api.ts): the UTF-8
// JSON of a {value}, {pickle}, {raw} or {list} whose items may themselves be {blob} refs.
import type { RuntimeApi } from "./api.js";
import { hasBlob, inlineSize, toOperator, toWorker, type OperatorValue, type WorkerForm } from "./values.js";

const isRaw = (v: unknown): boolean =>
  typeof v === "object" &&
  v !== null &&
  typeof (v as Record<string, unknown>).contentType === "string" &&
  typeof (v as Record<string, unknown>).data === "string";

export class BlobError extends Error {
  override name = "BlobError";
}

export class Blobs {
  /** Updated from the register answer. */
  limit = 64 * 1024;
  readonly stats = { uploads: 0, downloads: 0, uploadedBytes: 0, downloadedBytes: 0 };

  constructor(private readonly api: RuntimeApi) {}

  /** Worker form → operator value; stored as a blob (filed under `call`'s request) when too large. */
  async outbound(form: unknown, call: string, where: string, limit = this.limit): Promise<OperatorValue> {
    const value = toOperator(form, where);
    if (value.call !== undefined || value.blob !== undefined) return value;
    const size = inlineSize(value);
    if (size <= limit) return value;
    const data = Buffer.from(JSON.stringify(value), "utf8");
    const r = await this.api.blobPut(call, data);
    if (!r.ok) throw new BlobError(`${where}: storing a ${size}-byte value failed: ${r.code}: ${r.message}`);
    this.stats.uploads++;
    this.stats.uploadedBytes += data.length;
    return { blob: r.body.blob };
  }

  /** Operator value (concrete) → worker form, fetching every blob it references. */
  async inbound(value: OperatorValue, where: string): Promise<WorkerForm> {
    return toWorker(hasBlob(value) ? await this.inline(value, where, 0) : value, where);
  }

  private async inline(value: OperatorValue, where: string, depth: number): Promise<OperatorValue> {
    if (depth > 8) throw new BlobError(`${where}: blobs nested deeper than 8 levels`);
    if (value.blob !== undefined) return this.inline(await this.fetch(value.blob, where), where, depth + 1);
    if (Array.isArray(value.list)) {
      const items = await Promise.all(
        value.list.map((item, i) => this.inline(item as OperatorValue, `${where}.list[${i}]`, depth)),
      );
      return { list: items as Record<string, unknown>[] };
    }
    return value;
  }

  private async fetch(ref: string, where: string): Promise<OperatorValue> {
    const r = await this.api.blobGet(ref);
    if (!r.ok) throw new BlobError(`${where}: reading blob ${ref} failed: ${r.code}: ${r.message}`);
    this.stats.downloads++;
    this.stats.downloadedBytes += r.body.length;
    let doc: unknown;
    try {
      doc = JSON.parse(r.body.toString("utf8"));
    } catch {
      throw new BlobError(`${where}: blob ${ref} is not JSON`);
    }
    // Not the zod value schema: its length limits are for inline values, a blob is large by design.
    const keys = typeof doc === "object" && doc !== null && !Array.isArray(doc) ? Object.keys(doc) : [];
    const d = doc as Record<string, unknown>;
    const ok =
      keys.length === 1 &&
      ((keys[0] === "value" && d.value !== undefined) ||
        (keys[0] === "pickle" && typeof d.pickle === "string") ||
        (keys[0] === "raw" && isRaw(d.raw)) ||
        (keys[0] === "list" && Array.isArray(d.list)));
    if (!ok) throw new BlobError(`${where}: blob ${ref} must hold exactly one of value, pickle, raw or list`);
    return doc as OperatorValue;
  }
}
