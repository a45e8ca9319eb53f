// What every BlobStore promises, run against each implementation (the filesystem here, S3 in the
// integration suite against the local cluster's object store): streamed puts, reads, the size limit
// with nothing left behind, delete one blob and by prefix, and listing that pages through every name once.
import { expect, it } from "vitest";
import { type BlobStore, BlobTooLargeError } from "./blobstore.js";

export interface ContractOptions {
  /** The refs this store holds under `under` ("ns/r3/" …), for checking that nothing was left. */
  keys(under: string): Promise<string[]>;
}

export function blobStoreContract(store: () => BlobStore, { keys }: ContractOptions): void {
  it("puts bytes and streams, reads them back, deletes a request's blobs by prefix", async () => {
    const s = store();
    await s.put("ns/r1/a", Buffer.from("hello"));
    async function* chunks() {
      yield Buffer.from("wor");
      yield Buffer.from("ld");
    }
    expect(await s.put("ns/r1/b", chunks())).toBe(5);
    await s.put("ns/r2/a", Buffer.from("other"));
    expect((await s.read("ns/r1/b"))!.toString()).toBe("world");
    expect((await s.get("ns/r1/a"))!.size).toBe(5);
    expect(await s.read("ns/r9/none")).toBeUndefined();
    await s.deletePrefix("ns/r1");
    expect(await s.read("ns/r1/a")).toBeUndefined();
    expect(await s.get("ns/r1/b")).toBeUndefined();
    expect((await s.read("ns/r2/a"))!.toString()).toBe("other");
    expect(await keys("ns/")).toEqual(["ns/r2/a"]);
    await s.put("ns/r2/b", Buffer.from("gone soon"));
    await s.delete("ns/r2/b");
    await s.delete("ns/r2/never-there");
    expect(await s.read("ns/r2/b")).toBeUndefined();
    expect(await keys("ns/")).toEqual(["ns/r2/a"]);
  });

  it("a blob over the limit is refused and leaves nothing behind", async () => {
    const s = store();
    await expect(s.put("ns/r3/small", Buffer.alloc(11), 10)).rejects.toBeInstanceOf(BlobTooLargeError);
    async function* big() {
      for (let i = 0; i < 12; i++) yield Buffer.alloc(1024 * 1024, i);
    }
    await expect(s.put("ns/r3/big", big(), 10 * 1024 * 1024)).rejects.toBeInstanceOf(BlobTooLargeError);
    expect(await s.read("ns/r3/big")).toBeUndefined();
    expect(await keys("ns/r3/")).toEqual([]);
  }, 60_000);

  it("lists namespaces and requests; paging with the store's token visits each once", async () => {
    const s = store();
    const names = ["a", "a-b", "a.c", "b", "c.d", "c0"];
    for (const r of names) await s.put(`list/${r}/x`, Buffer.from(r));
    await s.put("list/a/state/k", Buffer.from("s"));
    const all = await s.listChildren("list", 100);
    expect([...all.names].sort()).toEqual([...names].sort());
    expect(all.next).toBeUndefined();
    for (const size of [1, 2, 4]) {
      const paged: string[] = [];
      let token: string | undefined;
      do {
        const page = await s.listChildren("list", size, token);
        expect(page.names.length).toBeLessThanOrEqual(size);
        paged.push(...page.names);
        token = page.next;
      } while (token);
      // Each once (a store may order a paged listing differently from a whole one).
      expect([...paged].sort()).toEqual([...all.names].sort());
    }
    expect((await s.listChildren("", 100)).names).toEqual(expect.arrayContaining(["list", "ns"]));
  });
}
