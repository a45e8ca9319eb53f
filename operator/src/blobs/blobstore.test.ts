import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BlobTooLargeError, FileBlobStore } from "./blobstore.js";
import { checkRef } from "./refs.js";

describe("FileBlobStore", () => {
  const dir = mkdtempSync(join(tmpdir(), "trellis-blobs-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FileBlobStore(dir);

  it("puts bytes and streams, reads them back, deletes a request's blobs by prefix", async () => {
    await store.put("ns/r1/a", Buffer.from("hello"));
    async function* chunks() {
      yield Buffer.from("wor");
      yield Buffer.from("ld");
    }
    expect(await store.put("ns/r1/b", chunks())).toBe(5);
    await store.put("ns/r2/a", Buffer.from("other"));
    expect((await store.read("ns/r1/b"))!.toString()).toBe("world");
    const got = await store.get("ns/r1/a");
    expect(got!.size).toBe(5);
    await store.deletePrefix("ns/r1");
    expect(await store.read("ns/r1/a")).toBeUndefined();
    expect(await store.get("ns/r1/b")).toBeUndefined();
    expect((await store.read("ns/r2/a"))!.toString()).toBe("other");
  });

  it("a blob over the limit is refused and leaves nothing behind", async () => {
    await expect(store.put("ns/r3/big", Buffer.alloc(11), 10)).rejects.toBeInstanceOf(BlobTooLargeError);
    expect(await store.read("ns/r3/big")).toBeUndefined();
    expect(readdirSync(join(dir, "blobs", "ns", "r3"))).toEqual([]);
  });

  it("refs are checked", async () => {
    expect(checkRef("ns/r/x")).toBeUndefined();
    expect(checkRef("ns/../x")).toBeDefined();
    expect(checkRef("/abs")).toBeDefined();
    expect(checkRef("a//b")).toBeDefined();
    await expect(store.put("../escape", Buffer.from("x"))).rejects.toThrow(/blob ref/);
  });
});
