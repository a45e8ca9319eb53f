// Large values live in a blob store, never in etcd. A ref is "<namespace>/<request>/<id>" (or
// ".../state/<key>" for request state) so that a request's blobs are removed by prefix.
//
// Implementations: the filesystem (here, for one node) and an S3-compatible bucket (s3-blobstore.ts).
// - put(ref, data, maxBytes): write all bytes or nothing (readers never see a partial blob),
//   replacing an existing blob; throws BlobTooLargeError past maxBytes.
// - get(ref): the bytes as a stream with their size, or undefined when absent.
// - delete(ref): remove one blob (nothing when absent), e.g. the inputs of a refused request.
// - deletePrefix(prefix): remove every blob whose ref starts with "<prefix>/".
// - listChildren(prefix, limit, token): the next segment names under "<prefix>/" ("" lists the
//   first segments: namespaces), at most `limit`, and a token to list the ones after them (the
//   store's own: a bucket's continuation token); the orphan sweep pages through them.
// Every blob that a value references ({blob: ref}) holds a BlobDocument (protocol/). Refs: refs.ts.
import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { once } from "node:events";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { checkRef } from "./refs.js";

export interface BlobStore {
  put(ref: string, data: Uint8Array | AsyncIterable<Uint8Array>, maxBytes?: number): Promise<number>;
  get(ref: string): Promise<{ size: number; stream: Readable } | undefined>;
  read(ref: string): Promise<Buffer | undefined>;
  delete(ref: string): Promise<void>;
  deletePrefix(prefix: string): Promise<void>;
  listChildren(prefix: string, limit: number, token?: string): Promise<{ names: string[]; next?: string }>;
  /**
   * A URL that lets its holder (a pod) read one blob, or write one of exactly `size` bytes, for
   * `expiresInSeconds`, without passing through the operator. Absent: the store cannot (filesystem).
   */
  presign?(
    ref: string,
    op: { method: "GET" } | { method: "PUT"; size: number },
    expiresInSeconds: number,
  ): Promise<string>;
}

export class BlobTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`blob exceeds the limit of ${limit} bytes`);
  }
}

function assertRef(ref: string): void {
  const why = checkRef(ref);
  if (why) throw new Error(`blob ref ${JSON.stringify(ref)}: ${why}`);
}

/** Blobs as files under `root`, written to a temp file and renamed into place. */
export class FileBlobStore implements BlobStore {
  constructor(private readonly root: string) {}

  private path(ref: string): string {
    assertRef(ref);
    return join(this.root, "blobs", ref);
  }

  async put(ref: string, data: Uint8Array | AsyncIterable<Uint8Array>, maxBytes = Infinity): Promise<number> {
    const path = this.path(ref);
    await mkdir(dirname(path), { recursive: true });
    const tmp = `${path}.tmp-${randomUUID()}`;
    let size = 0;
    const source = data instanceof Uint8Array ? Readable.from([data]) : Readable.from(data);
    const counted = async function* () {
      for await (const chunk of source) {
        const buf = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Uint8Array);
        size += buf.byteLength;
        if (size > maxBytes) throw new BlobTooLargeError(maxBytes);
        yield buf;
      }
    };
    const out = createWriteStream(tmp);
    try {
      await pipeline(counted, out);
      await rename(tmp, path);
    } catch (err) {
      // The file is opened asynchronously: a put that fails early would otherwise unlink before
      // the open and leave the temp file behind.
      if (!out.closed) await once(out, "close").catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    return size;
  }

  async get(ref: string): Promise<{ size: number; stream: Readable } | undefined> {
    const path = this.path(ref);
    try {
      const st = await stat(path);
      if (!st.isFile()) return undefined;
      return { size: st.size, stream: createReadStream(path) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async read(ref: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.path(ref));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  async delete(ref: string): Promise<void> {
    try {
      await unlink(this.path(ref));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    await rm(this.path(prefix), { recursive: true, force: true });
  }

  async listChildren(prefix: string, limit: number, token?: string): Promise<{ names: string[]; next?: string }> {
    const dir = prefix ? this.path(prefix) : join(this.root, "blobs");
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { names: [] };
      throw err;
    }
    const sorted = entries
      .filter((e) => e.isDirectory() && (token === undefined || e.name > token))
      .map((e) => e.name)
      .sort();
    const names = sorted.slice(0, limit);
    return { names, next: sorted.length > limit ? names[names.length - 1] : undefined };
  }
}
