import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.js";

describe("parseConfig: the function pods' node-loss toleration", () => {
  it("defaults to 30 s and reads TRELLIS_NODE_LOSS_TOLERATION_SECONDS", () => {
    expect(parseConfig({}).nodeLossTolerationSeconds).toBe(30);
    expect(parseConfig({ TRELLIS_NODE_LOSS_TOLERATION_SECONDS: "5" }).nodeLossTolerationSeconds).toBe(5);
    expect(parseConfig({ TRELLIS_NODE_LOSS_TOLERATION_SECONDS: "0" }).nodeLossTolerationSeconds).toBe(0);
  });

  it.each(["-1", "86401", "2.5", "soon"])("refuses %j, naming the variable", (v) => {
    expect(() => parseConfig({ TRELLIS_NODE_LOSS_TOLERATION_SECONDS: v })).toThrow(
      /TRELLIS_NODE_LOSS_TOLERATION_SECONDS/,
    );
  });
});

describe("parseConfig: the blob store", () => {
  it("defaults to the filesystem, a 24 h request TTL and a sweep every 5 minutes", () => {
    const c = parseConfig({});
    expect(c.blobs).toEqual({ backend: "filesystem", dir: "/var/lib/trellis/blobs" });
    expect(c.requestTtlSeconds).toBe(86400);
    expect(c.blobSweep).toEqual({ intervalMs: 300_000, graceMs: 600_000, maxPerPass: 1000 });
    expect(parseConfig({ TRELLIS_REQUEST_TTL_SECONDS: "0" }).requestTtlSeconds).toBeUndefined();
  });

  it("reads an S3 bucket, and names the variable that is missing or wrong", () => {
    const c = parseConfig({
      TRELLIS_BLOB_BACKEND: "s3",
      TRELLIS_S3_BUCKET: "my-bucket",
      TRELLIS_S3_PREFIX: "trellis/prod/",
      TRELLIS_S3_ENDPOINT: "http://10.0.0.1:8333",
      TRELLIS_S3_FORCE_PATH_STYLE: "true",
    });
    expect(c.blobs).toEqual({
      backend: "s3",
      bucket: "my-bucket",
      prefix: "trellis/prod/",
      endpoint: "http://10.0.0.1:8333",
      region: "us-east-1",
      forcePathStyle: true,
    });
    expect(() => parseConfig({ TRELLIS_BLOB_BACKEND: "s3" })).toThrow(
      /TRELLIS_S3_BUCKET: required when TRELLIS_BLOB_BACKEND=s3/,
    );
    expect(() => parseConfig({ TRELLIS_BLOB_BACKEND: "gcs" })).toThrow(
      /TRELLIS_BLOB_BACKEND: must be filesystem or s3/,
    );
    expect(() => parseConfig({ TRELLIS_BLOB_BACKEND: "s3", TRELLIS_S3_BUCKET: "Bad_Bucket" })).toThrow(
      /TRELLIS_S3_BUCKET: must be a bucket name/,
    );
    expect(() => parseConfig({ TRELLIS_S3_PREFIX: "no-slash" })).toThrow(/TRELLIS_S3_PREFIX/);
    expect(() => parseConfig({ TRELLIS_S3_ENDPOINT: "not a url" })).toThrow(/TRELLIS_S3_ENDPOINT/);
  });
});

describe("parseConfig: the HTTP API's limits", () => {
  it("defaults to a 10 MiB body and 5 GiB Files, and reads TRELLIS_HTTP_MAX_FILE_BYTES", () => {
    expect(parseConfig({}).http.bodyLimit).toBe(10 * 1024 * 1024);
    expect(parseConfig({}).http.maxFileBytes).toBe(5 * 1024 * 1024 * 1024);
    expect(parseConfig({ TRELLIS_HTTP_MAX_FILE_BYTES: "1048576" }).http.maxFileBytes).toBe(1048576);
  });

  it.each(["-1", "1023", "2.5", "big"])("refuses %j, naming the variable", (v) => {
    expect(() => parseConfig({ TRELLIS_HTTP_MAX_FILE_BYTES: v })).toThrow(/TRELLIS_HTTP_MAX_FILE_BYTES/);
  });
});
