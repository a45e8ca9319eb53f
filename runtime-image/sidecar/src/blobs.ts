// Large values: the worker sends everything inline; values over the operator's inline limit go
// to the blob store and travel as {blob}. With an object store (register's directBlobs) the bytes
// go between this pod and the store through presigned URLs, never through the operator. Blobs in what the worker is given are fetched and
// inlined, so the worker never sees one. A blob holds a BlobDocument (protocol/src/runtime-api.ts): the UTF-8
// JSON of a {value}, {pickle}, {raw} or {list} whose items may themselves be {blob} refs.
// Values over the spill threshold cross the socket as files (spill.ts), streamed to and from the
// store, never held whole in memory.
import { readFile } from "node:fs/promises";
import { MAX_FRAME_BYTES } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import { checkDocument, getFile, head, putFile, type SpillDir, type SpillRef } from "./spill.js";
import { hasBlob, inlineSize, toOperator, toWorker, type OperatorValue, type WorkerForm } from "./values.js";

/** Where a value going to the worker may be spilled: only to a worker that agreed (hello.spill). */
export interface SpillTo {
  spill: boolean;
  /** Every file handed over is added here, so the sidecar can remove what the worker did not. */
  files?: Set<string> | string[];
}

const isSpill = (v: unknown): v is { spill: SpillRef } =>
  typeof v === "object" && v !== null && "spill" in v && Object.keys(v).length === 1;

const isRaw = (v: unknown): boolean =>
  typeof v === "object" &&
  v !== null &&
  typeof (v as Record<string, unknown>).contentType === "string" &&
  typeof (v as Record<string, unknown>).data === "string";

export class BlobError extends Error {
  override name = "BlobError";
  /** The operator refused the value for its size: running the function again cannot help. */
  readonly tooLarge: boolean;
  constructor(message: string) {
    super(message);
    this.tooLarge = /\bblob_too_large\b/.test(message);
  }
}

/** Attempts of one direct transfer (each with a fresh URL) before the value counts as failed. */
const DIRECT_ATTEMPTS = 5;

export class Blobs {
  /** Updated from the register answer. */
  limit = 64 * 1024;
  /** Updated from the register answer: transfers go to the store through presigned URLs. */
  direct = false;
  /** The run volume's values directory (spilled values), when the pod has one. */
  spillDir: SpillDir | undefined;
  readonly stats = {
    uploads: 0,
    downloads: 0,
    uploadedBytes: 0,
    downloadedBytes: 0,
    direct: 0,
    spilledOut: 0,
    spilledIn: 0,
  };

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
    const value = toOperator(await this.unspill(form, call, where, limit), where);
    if (value.call !== undefined || value.blob !== undefined) return value;
    const size = inlineSize(value);
    if (size <= limit) return value;
    const data = Buffer.from(JSON.stringify(value), "utf8");
    const blob = await this.put(call, data, where, size);
    this.stats.uploads++;
    this.stats.uploadedBytes += data.length;
    return { blob };
  }

  /**
   * Every {spill} of a worker form (top level or list item) as a {blob} (or inline when small),
   * its file streamed to the store and then removed, whatever happened.
   */
  private async unspill(form: unknown, call: string, where: string, limit: number): Promise<unknown> {
    if (isSpill(form)) {
      const dir = this.spillDir;
      if (!dir) throw new BlobError(`${where}: a spilled value, but this sidecar has no values directory`);
      try {
        const path = dir.check(form.spill, where);
        await checkDocument(path, where);
        // Small enough to go inline after all: the document back as the worker form it was.
        if (form.spill.size <= limit) return toWorker(JSON.parse(await readFile(path, "utf8")), where);
        const blob = await this.putSpilled(call, path, form.spill.size, where);
        this.stats.uploads++;
        this.stats.spilledOut++;
        this.stats.uploadedBytes += form.spill.size;
        return { blob };
      } finally {
        dir.remove(form.spill.path);
      }
    }
    if (typeof form === "object" && form !== null && Array.isArray((form as { list?: unknown }).list)) {
      const list = (form as { list: unknown[] }).list;
      if (!list.some((item) => isSpill(item) || (typeof item === "object" && item !== null && "list" in item)))
        return form;
      const items: unknown[] = [];
      // One at a time: each may be large.
      for (const [i, item] of list.entries()) items.push(await this.unspill(item, call, `${where}.list[${i}]`, limit));
      return { list: items };
    }
    return form;
  }

  private async putSpilled(call: string, path: string, size: number, where: string): Promise<string> {
    if (!this.direct) {
      // The operator's blob route takes a buffer: only what a frame could have carried anyway.
      if (size > MAX_FRAME_BYTES)
        throw new BlobError(
          `${where}: a ${size}-byte value is over the ${MAX_FRAME_BYTES}-byte limit for values stored through the operator (its blob store has no presigned URLs)`,
        );
      return this.put(call, await readFile(path), where, size);
    }
    return this.directly<string>(where, `storing a ${size}-byte value`, async () => {
      const u = await this.api.blobUrls({ put: { call, size } });
      if (!u.ok || !u.body.put) return { final: `${u.ok ? "no URL" : `${u.code}: ${u.message}`}` };
      const status = await putFile(u.body.put.url, path, size);
      return status >= 200 && status < 300 ? { value: u.body.put.blob } : { status };
    });
  }

  /**
   * Operator value (concrete) → worker form, fetching every blob it references. With `to.spill`,
   * a large blob fetched directly is handed over as a file instead of inline.
   */
  async inbound(value: OperatorValue, where: string, to?: SpillTo): Promise<WorkerForm> {
    return toWorker(hasBlob(value) ? await this.inline(value, where, 0, to) : value, where);
  }

  private async inline(value: OperatorValue, where: string, depth: number, to?: SpillTo): Promise<OperatorValue> {
    if (depth > 8) throw new BlobError(`${where}: blobs nested deeper than 8 levels`);
    if (value.blob !== undefined) {
      const got =
        to?.spill && this.direct && this.spillDir
          ? await this.fetchToFile(value.blob, where, to)
          : { doc: await this.fetch(value.blob, where) };
      if ("spilled" in got) return got.spilled;
      return this.inline(got.doc, where, depth + 1, to);
    }
    if (Array.isArray(value.list)) {
      const items = await Promise.all(
        value.list.map((item, i) => this.inline(item as OperatorValue, `${where}.list[${i}]`, depth, to)),
      );
      return { list: items as Record<string, unknown>[] };
    }
    return value;
  }

  /**
   * A blob streamed from the store into a file of the values directory. Over the threshold, and
   * not a {list} (whose items may be blobs themselves), it goes to the worker as {spill} (carried
   * through toWorker); otherwise the document is read from the file as without spilling.
   */
  private async fetchToFile(
    ref: string,
    where: string,
    to: SpillTo,
  ): Promise<{ spilled: OperatorValue } | { doc: OperatorValue }> {
    const dir = this.spillDir!;
    const path = dir.newPath();
    try {
      const size = await this.directly<number>(where, `reading blob ${ref}`, async () => {
        const u = await this.api.blobUrls({ get: [ref] });
        const url = u.ok ? u.body.get?.[0]?.url : undefined;
        if (!url) return { final: u.ok ? "no URL" : `${u.code}: ${u.message}` };
        const r = await getFile(url, path);
        if (r.status >= 200 && r.status < 300) return { value: r.size };
        return r.status === 404 ? { final: "the store has no such object" } : { status: r.status };
      });
      this.stats.downloads++;
      this.stats.downloadedBytes += size;
      if (size > dir.threshold && !(await head(path)).startsWith('{"list"')) {
        await checkDocument(path, `${where}: blob ${ref}`);
        this.stats.spilledIn++;
        if (Array.isArray(to.files)) to.files.push(path);
        else to.files?.add(path);
        return { spilled: { spill: { path, size } } as unknown as OperatorValue };
      }
    } catch (e) {
      dir.remove(path);
      throw e;
    }
    // Small (or a list): read as an inline value, as without spilling.
    try {
      return { doc: this.document(ref, where, await readFile(path)) };
    } finally {
      dir.remove(path);
    }
  }

  private async fetch(ref: string, where: string): Promise<OperatorValue> {
    const body = await this.get(ref, where);
    this.stats.downloads++;
    this.stats.downloadedBytes += body.length;
    return this.document(ref, where, body);
  }

  private document(ref: string, where: string, body: Buffer): OperatorValue {
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
