// The S3 blob store against the local cluster's SeaweedFS: the same contract as the filesystem
// store (all or nothing, size limit, delete by prefix, listing for the sweep), streamed.
import { randomBytes, randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { ListMultipartUploadsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { blobStoreContract } from "../../operator/src/blobs/contract.testlib.js";
import { BlobStoreUnavailableError, S3BlobStore } from "../../operator/src/blobs/s3-blobstore.js";
import { BlobSweeper } from "../../operator/src/blobs/sweep.js";
import { localS3 } from "../support/s3.js";

const s3 = localS3();
const prefix = `test-${randomUUID().slice(0, 8)}/`;
const store = new S3BlobStore({
  bucket: s3.bucket,
  prefix,
  endpoint: s3.endpoint,
  region: s3.region,
  forcePathStyle: true,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
});

async function keys(under = ""): Promise<string[]> {
  const out = await store.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix + under }));
  return (out.Contents ?? []).map((o) => o.Key!.slice(prefix.length)).sort();
}

afterAll(async () => {
  for (const ns of (await store.listChildren("", 1000)).names) await store.deletePrefix(ns);
});

describe("S3BlobStore on SeaweedFS", () => {
  it("answers the bucket check; a missing bucket is a permanent error naming the setting", async () => {
    await store.check();
    const missing = new S3BlobStore({ ...s3, bucket: "no-such-bucket-here", forcePathStyle: true, credentials: s3 });
    const err = await missing.check().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BlobStoreUnavailableError);
    expect((err as BlobStoreUnavailableError).permanent).toBe(true);
    expect(String(err)).toMatch(/no-such-bucket-here.*does not exist.*TRELLIS_S3_BUCKET/);
  });

  blobStoreContract(() => store, { keys });

  it("streams a 40 MiB blob in multipart parts and back, byte for byte", async () => {
    const part = randomBytes(1024 * 1024);
    const n = 40;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < n; i++) yield Buffer.concat([Buffer.from([i]), part.subarray(1)]);
      })(),
    );
    expect(await store.put("ns/big/x", source)).toBe(n * part.length);
    const got = await store.get("ns/big/x");
    expect(got!.size).toBe(n * part.length);
    let offset = 0;
    for await (const chunk of got!.stream as AsyncIterable<Buffer>) {
      for (let i = 0; i < chunk.length; i += 65536) {
        const at = offset + i;
        const expected = at % part.length === 0 ? Math.floor(at / part.length) : part[at % part.length];
        expect(chunk[i]).toBe(expected);
      }
      offset += chunk.length;
    }
    expect(offset).toBe(n * part.length);
  }, 120_000);

  it("small puts at once hold no part buffers; a value crossing one part in a chunk is sent whole", async () => {
    const before = process.memoryUsage().arrayBuffers;
    // A prefix of its own: the sweep test below pages through this store's prefixes two at a time.
    const parts = new S3BlobStore({
      ...s3,
      prefix: `${prefix.slice(0, -1)}-parts/`,
      forcePathStyle: true,
      credentials: s3,
    });
    const puts = Array.from({ length: 64 }, (_, i) =>
      parts.put(`ns/small/${i}`, Readable.from([Buffer.from(`item ${i} `), Buffer.alloc(1000, i)])),
    );
    // Each put used to take an 8 MiB part buffer before its first await: 512 MiB here.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
    await Promise.all(puts);
    const small = await parts.get("ns/small/7");
    const chunks: Buffer[] = [];
    for await (const c of small!.stream as AsyncIterable<Buffer>) chunks.push(c);
    expect(Buffer.concat(chunks)).toEqual(Buffer.concat([Buffer.from("item 7 "), Buffer.alloc(1000, 7)]));

    const MiB = 1024 * 1024;
    const fivePart = new S3BlobStore({
      ...s3,
      prefix: `${prefix.slice(0, -1)}-parts/`,
      partSize: 5 * MiB,
      forcePathStyle: true,
      credentials: s3,
    });
    const a = randomBytes(3 * MiB);
    const b = randomBytes(3 * MiB);
    expect(await fivePart.put("ns/cross/x", Readable.from([a, b]))).toBe(6 * MiB);
    const got = await parts.get("ns/cross/x");
    const read: Buffer[] = [];
    for await (const c of got!.stream as AsyncIterable<Buffer>) read.push(c);
    expect(Buffer.concat(read).equals(Buffer.concat([a, b]))).toBe(true);
    await parts.deletePrefix("ns");
  }, 60_000);

  it("a source that fails after parts were sent leaves no object and no multipart upload", async () => {
    async function* failing() {
      for (let i = 0; i < 20; i++) yield Buffer.alloc(1024 * 1024, i);
      throw new Error("client went away");
    }
    await expect(store.put("ns/cut/x", failing())).rejects.toThrow(/client went away/);
    expect(await keys("ns/cut/")).toEqual([]);
    const uploads = await store.client.send(
      new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: `${prefix}ns/cut/` }),
    );
    expect(uploads.Uploads ?? []).toEqual([]);
  }, 60_000);

  it("the sweep removes a prefix whose request is gone once the grace has passed, and keeps the rest", async () => {
    for (const r of ["gone", "kept"]) await store.put(`sweep/${r}/v`, Buffer.from(r));
    let now = 1_000_000;
    const sweeper = new BlobSweeper({
      store,
      requestExists: (ns, r) => ns !== "sweep" || r === "kept",
      intervalMs: 1000,
      graceMs: 60_000,
      maxPerPass: 2,
      now: () => now,
    });
    const passes = [];
    for (let i = 0; i < 6; i++) passes.push(await sweeper.pass());
    expect(await keys("sweep/")).toEqual(["sweep/gone/v", "sweep/kept/v"]);
    now += 61_000;
    for (let i = 0; i < 6; i++) passes.push(await sweeper.pass());
    expect(await keys("sweep/")).toEqual(["sweep/kept/v"]);
    expect(passes.every((p) => p.examined <= 2)).toBe(true);
    expect(passes.reduce((n, p) => n + p.removed, 0)).toBeGreaterThanOrEqual(1);
  });

  it("presigned URLs: a PUT stores exactly the signed size, a GET reads it back, without the store's keys", async () => {
    const data = randomBytes(300_000);
    const putUrl = await store.presign("ns/direct/a", { method: "PUT", size: data.length }, 60);
    expect(putUrl).not.toContain(s3.secretAccessKey);
    const put = await fetch(putUrl, {
      method: "PUT",
      body: data,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(put.status).toBe(200);
    const get = await fetch(await store.presign("ns/direct/a", { method: "GET" }, 60));
    expect(Buffer.from(await get.arrayBuffer()).equals(data)).toBe(true);
    // More bytes than signed: refused, and the object keeps its bytes.
    const tooMany = await fetch(await store.presign("ns/direct/b", { method: "PUT", size: 10 }, 60), {
      method: "PUT",
      body: Buffer.alloc(11),
      headers: { "content-type": "application/octet-stream" },
    });
    expect(tooMany.ok).toBe(false);
    expect(await store.read("ns/direct/b")).toBeUndefined();
    // A URL for one key does not write another.
    const url = new URL(putUrl);
    url.pathname = url.pathname.replace("/direct/a", "/direct/c");
    const moved = await fetch(url, {
      method: "PUT",
      body: data,
      headers: { "content-type": "application/octet-stream" },
    });
    expect(moved.status).toBe(403);
  });
});
