import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BlobTooLargeError, FileBlobStore } from "./blobstore.js";
import { blobStoreContract } from "./contract.testlib.js";
import { checkRef } from "./refs.js";

describe("FileBlobStore", () => {
  const dir = mkdtempSync(join(tmpdir(), "trellis-blobs-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FileBlobStore(dir);

  blobStoreContract(() => store, {
    // Files under blobs/<under>, as refs; temp files of a failed put would show here too.
    keys: async (under) =>
      (existsSync(join(dir, "blobs", under))
        ? readdirSync(join(dir, "blobs", under), { recursive: true, withFileTypes: true })
        : []
      )
        .filter((e) => e.isFile())
        .map((e) => relative(join(dir, "blobs"), join(e.parentPath, e.name)))
        .sort(),
  });

  it("a put refused at its first chunk leaves no temp file (the file opens after the refusal)", async () => {
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        expect(store.put(`ns/early/b${i}`, Buffer.alloc(11), 10)).rejects.toBeInstanceOf(BlobTooLargeError),
      ),
    );
    expect(readdirSync(join(dir, "blobs", "ns", "early"))).toEqual([]);
  });

  it("refs are checked", async () => {
    expect(checkRef("ns/r/x")).toBeUndefined();
    expect(checkRef("ns/../x")).toBeDefined();
    expect(checkRef("/abs")).toBeDefined();
    expect(checkRef("a//b")).toBeDefined();
    await expect(store.put("../escape", Buffer.from("x"))).rejects.toThrow(/blob ref/);
  });
});
