// Blobs as objects of an S3-compatible bucket (AWS S3, GCS's XML API, MinIO, SeaweedFS, …).
// A ref maps to the key "<prefix><ref>"; an object becomes visible only when its upload completes,
// so readers never see a partial blob (the same promise as the filesystem store's rename).
// Credentials come from the SDK's default provider chain (env, shared config, IRSA / workload
// identity, instance metadata) unless given explicitly.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { Readable } from "node:stream";
import { type BlobStore, BlobTooLargeError } from "./blobstore.js";
import { checkRef } from "./refs.js";

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix for every blob ("" or ending in "/"). */
  prefix?: string;
  endpoint?: string;
  region?: string;
  /** Path-style URLs ("endpoint/bucket/key"), which most self-hosted stores need. */
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Bytes per multipart part (at least 5 MiB, default 8 MiB). */
  partSize?: number;
  /** Parts uploaded at once (default 2): a put holds this many part buffers. */
  queueSize?: number;
}

const MiB = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

export class BlobStoreUnavailableError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

function assertRef(ref: string): void {
  const why = checkRef(ref);
  if (why) throw new Error(`blob ref ${JSON.stringify(ref)}: ${why}`);
}

const isNotFound = (err: unknown): boolean =>
  err instanceof NoSuchKey ||
  (typeof err === "object" &&
    err !== null &&
    ((err as { name?: string }).name === "NoSuchKey" ||
      (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404));

export class S3BlobStore implements BlobStore {
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  private readonly partSize: number;
  private readonly queueSize: number;

  constructor(opts: S3BlobStoreOptions) {
    const prefix = opts.prefix ?? "";
    if (prefix && !prefix.endsWith("/")) throw new Error(`s3 prefix ${JSON.stringify(prefix)}: must end with "/"`);
    this.bucket = opts.bucket;
    this.prefix = prefix;
    this.partSize = Math.max(5 * MiB, opts.partSize ?? 8 * MiB);
    this.queueSize = Math.max(1, opts.queueSize ?? 2);
    const config: S3ClientConfig = {
      region: opts.region ?? "us-east-1",
      forcePathStyle: opts.forcePathStyle ?? false,
      // Our own retries are the engine's; the SDK's adaptive retry covers throttling and 5xx.
      maxAttempts: 5,
      // Checksums only where S3 requires them: a presigned PUT must not carry the checksum of an
      // empty body, and stores other than AWS's do not all know the newer checksum headers.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    };
    if (opts.endpoint) config.endpoint = opts.endpoint;
    if (opts.credentials) config.credentials = opts.credentials;
    this.client = new S3Client(config);
  }

  key(ref: string): string {
    assertRef(ref);
    return this.prefix + ref;
  }

  /**
   * Whether the bucket answers. A missing bucket or refused credentials is permanent (the
   * configuration must change); anything else (no connection yet, 5xx) is worth retrying.
   */
  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const permanent = status === 404 || status === 403 || status === 400 || status === 301;
      const why =
        status === 404
          ? "does not exist (TRELLIS_S3_BUCKET)"
          : status === 403
            ? "refused these credentials"
            : status === 301 || status === 400
              ? `is not served at this endpoint and region (HTTP ${status}: TRELLIS_S3_ENDPOINT, TRELLIS_S3_REGION)`
              : `did not answer: ${err instanceof Error ? err.message : String(err)}`;
      throw new BlobStoreUnavailableError(`s3 bucket ${JSON.stringify(this.bucket)} ${why}`, permanent);
    }
  }

  /**
   * Streams `data` into one object: a single PUT when it fits one part, else a multipart upload.
   * Parts are copied into `queueSize` buffers of `partSize` allocated once per put and reused, so
   * the memory of an upload is bounded by them (not by the value's size, nor by copies made per
   * part); a failed or refused upload is aborted, leaving no parts behind. A value smaller than a
   * part is sent from its own chunks: most values are small and many are put at once (an 8 MiB
   * buffer each held hundreds of MiB of external memory during a large map).
   */
  async put(ref: string, data: Uint8Array | AsyncIterable<Uint8Array>, maxBytes = Infinity): Promise<number> {
    const Key = this.key(ref);
    const source: Iterable<Uint8Array> | AsyncIterable<Uint8Array | string> =
      data instanceof Uint8Array ? [data] : data;
    let allocated = 1;
    // Until the value outgrows one part, its chunks are only referenced.
    let head: Uint8Array[] | undefined = [];
    let buf: Buffer = EMPTY;
    let filled = 0;
    let size = 0;
    let uploadId: string | undefined;
    const parts: { PartNumber: number; ETag: string }[] = [];
    // Part uploads under way, by the buffer they send from (insertion order: oldest first).
    const inFlight = new Map<Buffer, Promise<void>>();
    /** Starts sending `owner`'s first `length` bytes as the next part; returns a buffer to fill next. */
    const sendPart = async (owner: Buffer, length: number): Promise<Buffer> => {
      if (!uploadId) {
        const created = await this.client.send(
          new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ContentType: "application/octet-stream" }),
        );
        uploadId = created.UploadId!;
      }
      const slot = { PartNumber: parts.length + 1, ETag: "" };
      parts.push(slot);
      const sent = this.client
        .send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key,
            UploadId: uploadId,
            PartNumber: slot.PartNumber,
            Body: owner.subarray(0, length),
            ContentLength: length,
          }),
        )
        .then((r) => {
          slot.ETag = r.ETag!;
        });
      sent.catch(() => undefined); // awaited below or in the cleanup; never unhandled
      inFlight.set(owner, sent);
      if (allocated < this.queueSize) {
        allocated++;
        return Buffer.allocUnsafe(this.partSize);
      }
      const [oldest, done] = inFlight.entries().next().value as [Buffer, Promise<void>];
      await done;
      inFlight.delete(oldest);
      return oldest;
    };
    /** Copies `bytes` into part buffers, sending each one filled. */
    const copy = async (bytes: Uint8Array): Promise<void> => {
      while (bytes.byteLength > 0) {
        const n = Math.min(bytes.byteLength, buf.length - filled);
        buf.set(bytes.subarray(0, n), filled);
        filled += n;
        bytes = bytes.subarray(n);
        if (filled === buf.length) {
          buf = await sendPart(buf, filled);
          filled = 0;
        }
      }
    };
    try {
      for await (const chunk of source) {
        const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
        size += bytes.byteLength;
        if (size > maxBytes) throw new BlobTooLargeError(maxBytes);
        if (head && size < this.partSize) {
          head.push(bytes);
          continue;
        }
        if (head) {
          buf = Buffer.allocUnsafe(this.partSize);
          for (const h of head) await copy(h);
          head = undefined;
        }
        await copy(bytes);
      }
      if (!uploadId) {
        const body = head ? Buffer.concat(head, size) : buf.subarray(0, filled);
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key,
            Body: body,
            ContentLength: body.byteLength,
            ContentType: "application/octet-stream",
          }),
        );
        return size;
      }
      if (filled > 0) await sendPart(buf, filled);
      await Promise.all(inFlight.values());
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      );
      return size;
    } catch (err) {
      await Promise.allSettled(inFlight.values());
      if (uploadId)
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: uploadId }))
          .catch(() => undefined);
      throw err;
    }
  }

  async presign(
    ref: string,
    op: { method: "GET" } | { method: "PUT"; size: number },
    expiresInSeconds: number,
  ): Promise<string> {
    const Key = this.key(ref);
    if (op.method === "GET")
      return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key }), {
        expiresIn: expiresInSeconds,
      });
    // Content-Length is signed: the URL stores exactly `size` bytes or nothing.
    return getSignedUrl(
      this.client,
      new PutObjectCommand({
        Bucket: this.bucket,
        Key,
        ContentLength: op.size,
        ContentType: "application/octet-stream",
      }),
      { expiresIn: expiresInSeconds, signableHeaders: new Set(["content-length", "content-type"]) },
    );
  }

  async get(ref: string): Promise<{ size: number; stream: Readable } | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(ref) }));
      const body = out.Body as Readable | undefined;
      if (!body) return { size: 0, stream: Readable.from([]) };
      return { size: out.ContentLength ?? 0, stream: body };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async read(ref: string): Promise<Buffer | undefined> {
    const blob = await this.get(ref);
    if (!blob) return undefined;
    const chunks: Buffer[] = [];
    for await (const c of blob.stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async delete(ref: string): Promise<void> {
    // S3 answers 204 for a key that is not there too.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(ref) }));
  }

  async deletePrefix(prefix: string): Promise<void> {
    const keyPrefix = `${this.key(prefix)}/`;
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: keyPrefix, ContinuationToken: token }),
      );
      const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
      if (keys.length) {
        const out = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } }),
        );
        const failed = out.Errors ?? [];
        if (failed.length)
          throw new Error(`s3 delete under ${keyPrefix}: ${failed.length} objects failed (${failed[0]?.Code})`);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async listChildren(prefix: string, limit: number, token?: string): Promise<{ names: string[]; next?: string }> {
    const keyPrefix = prefix ? `${this.key(prefix)}/` : this.prefix;
    const names: string[] = [];
    let next = token;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: keyPrefix,
          Delimiter: "/",
          ContinuationToken: next,
          MaxKeys: Math.min(1000, limit - names.length),
        }),
      );
      for (const p of page.CommonPrefixes ?? []) {
        const name = p.Prefix?.slice(keyPrefix.length).replace(/\/$/, "");
        if (name) names.push(name);
      }
      next = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (next && names.length < limit);
    return { names, next };
  }
}
