// The blobs one invoke writes: large inputs under the request's prefix, a File streamed into its
// own raw document as it arrives. Every ref is remembered, so that an invoke that fails or is
// refused (or answers an existing request) leaves none of them behind.
import { createHash } from "node:crypto";
import { BlobTooLargeError, newBlobRef } from "../blobs/index.js";
import { type FileSink, StoredRaw, tooLarge } from "./inputs.js";
import { rawDocument, rawDocumentLimit } from "./raw-stream.js";
import type { HttpApiDeps } from "./types.js";

export class InputBlobs {
  private readonly written: string[] = [];

  constructor(
    private readonly blobs: HttpApiDeps["blobs"],
    private readonly namespace: string,
    private readonly request: string,
    private readonly opts: { maxFileBytes: number; digest: boolean },
  ) {}

  /** A new ref under the request's prefix, remembered for discard(). */
  readonly ref = (): string => {
    const r = newBlobRef(this.namespace, this.request);
    this.written.push(r);
    return r;
  };

  readonly put = (ref: string, data: Uint8Array): Promise<number> => this.blobs.put(ref, data);

  /** A File too large to be inline, streamed into a raw document; 413 past the file limit. */
  readonly file: FileSink = async (where, contentType, head, rest) => {
    const ref = this.ref();
    const max = this.opts.maxFileBytes;
    const hash = this.opts.digest ? createHash("sha256") : undefined;
    let size = 0;
    async function* bytes(): AsyncGenerator<Buffer> {
      for (let chunk: Buffer | undefined = head; chunk;) {
        size += chunk.length;
        if (size > max) throw tooLarge(where, max, " for a file");
        hash?.update(chunk);
        yield chunk;
        const n = await rest.next();
        chunk = n.done ? undefined : n.value;
      }
    }
    try {
      // The store writes all or nothing: a failed put leaves no blob (the limit is a backstop).
      await this.blobs.put(ref, rawDocument(contentType, bytes()), rawDocumentLimit(contentType, max));
    } catch (e) {
      throw e instanceof BlobTooLargeError ? tooLarge(where, max, " for a file") : e;
    }
    return new StoredRaw(ref, contentType, size, hash?.digest("hex"));
  };

  /** Deletes every blob written so far (a failed delete is logged: the orphan sweep gets it later). */
  async discard(onError: (ref: string, err: unknown) => void): Promise<void> {
    const refs = this.written.splice(0);
    await Promise.all(refs.map((r) => this.blobs.delete(r).catch((e: unknown) => onError(r, e))));
  }
}
