// Large values: the worker sends everything inline; values over the operator's inline limit go
// to the blob store and travel as {blob}. With an object store (register's directBlobs) the bytes
// go between this pod and the store through presigned URLs, never through the operator. Blobs in what the worker is given are fetched and
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

/** Attempts of one direct transfer (each with a fresh URL) before the value counts as failed. */
const DIRECT_ATTEMPTS = 5;

export class Blobs {
  /** Updated from the register answer. */
  limit = 64 * 1024;
  /** Updated from the register answer: transfers go to the store through presigned URLs. */
  direct = false;
  readonly stats = { uploads: 0, downloads: 0, uploadedBytes: 0, downloadedBytes: 0, direct: 0 };

  constructor(
    private readonly api: RuntimeApi,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  private async put(call: string, data: Buffer, where: string, size: number): Promise<string> {
    if (!this.direct) {
      const r = await this.api.blobPut(call, data);
      if (!r.ok) throw new BlobError(`${where}: storing a ${size}-byte value failed: ${r.code}: ${r.message}`);
      return r.body.blob;
    }
    return this.directly<string>(where, `storing a ${size}-byte value`, async () => {
      const u = await this.api.blobUrls({ put: { call, size: data.length } });
      if (!u.ok || !u.body.put) return { final: `${u.ok ? "no URL" : `${u.code}: ${u.message}`}` };
      const res = await fetch(u.body.put.url, {
        method: "PUT",
        // A Uint8Array body (fetch takes it as is; the DOM typings do not list Buffer).
        body: data as unknown as BodyInit,
        headers: { "content-type": "application/octet-stream" },
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.ok ? { value: u.body.put.blob } : { status: res.status };
    });
  }

  private async get(ref: string, where: string): Promise<Buffer> {
    if (!this.direct) {
      const r = await this.api.blobGet(ref);
      if (!r.ok) throw new BlobError(`${where}: reading blob ${ref} failed: ${r.code}: ${r.message}`);
      return r.body;
    }
    return this.directly<Buffer>(where, `reading blob ${ref}`, async () => {
      const u = await this.api.blobUrls({ get: [ref] });
      const url = u.ok ? u.body.get?.[0]?.url : undefined;
      if (!url) return { final: u.ok ? "no URL" : `${u.code}: ${u.message}` };
      const res = await fetch(url);
      if (!res.ok) {
        await res.arrayBuffer().catch(() => undefined);
        return res.status === 404 ? { final: "the store has no such object" } : { status: res.status };
      }
      return { value: Buffer.from(await res.arrayBuffer()) };
    });
  }

  /**
   * One transfer with the store, retried with backoff while it fails for a reason that may pass
   * (no connection, 5xx, 429, an expired URL); a refusal by the operator is final.
   */
  private async directly<T>(
    where: string,
    what: string,
    once: () => Promise<{ value: T } | { status: number } | { final: string }>,
  ): Promise<T> {
    let last = "";
    for (let attempt = 0; attempt < DIRECT_ATTEMPTS; attempt++) {
      if (attempt > 0) await this.sleep(Math.min(5_000, 200 * 2 ** attempt));
      let r: { value: T } | { status: number } | { final: string };
      try {
        r = await once();
      } catch (e) {
        last = (e as Error).message;
        continue;
      }
      if ("value" in r) {
        this.stats.direct++;
        return r.value;
      }
      if ("final" in r) throw new BlobError(`${where}: ${what} failed: ${r.final}`);
      last = `the store answered HTTP ${r.status}`;
      if (r.status < 500 && r.status !== 429 && r.status !== 403) break;
    }
    throw new BlobError(`${where}: ${what} failed: ${last}`);
  }

  /** Worker form → operator value; stored as a blob (filed under `call`'s request) when too large. */
  async outbound(form: unknown, call: string, where: string, limit = this.limit): Promise<OperatorValue> {
    const value = toOperator(form, where);
    if (value.call !== undefined || value.blob !== undefined) return value;
    const size = inlineSize(value);
    if (size <= limit) return value;
    const data = Buffer.from(JSON.stringify(value), "utf8");
    const blob = await this.put(call, data, where, size);
    this.stats.uploads++;
    this.stats.uploadedBytes += data.length;
    return { blob };
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
    const body = await this.get(ref, where);
    this.stats.downloads++;
    this.stats.downloadedBytes += body.length;
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString("utf8"));
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
