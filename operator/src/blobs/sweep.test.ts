import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FileBlobStore } from "./blobstore.js";
import { BlobStoreUnavailableError } from "./s3-blobstore.js";
import { type CreatedBlobStore, waitForBlobStore } from "./create.js";
import { BlobSweeper, decideSweep, type SweepState } from "./sweep.js";

describe("decideSweep", () => {
  it("removes a prefix only once it has been orphaned for the grace, and forgets one whose request is back", () => {
    const state: SweepState = { orphanSince: new Map() };
    const exists = new Set(["ns/live"]);
    const seen = ["ns/live", "ns/gone", "ns/late"];
    expect(decideSweep(seen, (p) => exists.has(p), state, 0, 100)).toEqual({ remove: [], waiting: 2 });
    // The request of ns/late appears (its upload came first); ns/gone stays orphaned.
    exists.add("ns/late");
    expect(decideSweep(seen, (p) => exists.has(p), state, 99, 100)).toEqual({ remove: [], waiting: 1 });
    expect(state.orphanSince.has("ns/late")).toBe(false);
    expect(decideSweep(seen, (p) => exists.has(p), state, 100, 100)).toEqual({ remove: ["ns/gone"], waiting: 0 });
    expect(state.orphanSince.size).toBe(0);
  });

  it("with no grace, removes on the first sight", () => {
    const state: SweepState = { orphanSince: new Map() };
    expect(decideSweep(["a/b"], () => false, state, 5, 0).remove).toEqual(["a/b"]);
  });
});

describe("BlobSweeper on the filesystem store", () => {
  const dir = mkdtempSync(join(tmpdir(), "trellis-sweep-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const store = new FileBlobStore(dir);

  it("pages through every namespace, a bounded number of prefixes per pass, and removes only orphans", async () => {
    const live = new Set<string>();
    for (const ns of ["n1", "n2", "n3"])
      for (let r = 0; r < 5; r++) {
        await store.put(`${ns}/r${r}/v`, Buffer.from("x"));
        if (r % 2 === 0) live.add(`${ns}/r${r}`);
      }
    let now = 0;
    const passes: { examined: number; removed: number }[] = [];
    const sweeper = new BlobSweeper({
      store,
      requestExists: (ns, r) => live.has(`${ns}/${r}`),
      intervalMs: 1,
      graceMs: 10,
      maxPerPass: 4,
      now: () => now,
    });
    // 15 prefixes, 4 per pass: 4 passes see each once; then the grace passes and 4 more remove.
    for (let i = 0; i < 4; i++) passes.push(await sweeper.pass());
    expect(passes.map((p) => p.examined)).toEqual([4, 4, 4, 3]);
    expect(passes.every((p) => p.removed === 0)).toBe(true);
    now = 10;
    for (let i = 0; i < 4; i++) passes.push(await sweeper.pass());
    expect(passes.slice(4).reduce((n, p) => n + p.removed, 0)).toBe(6);
    for (const ns of ["n1", "n2", "n3"]) {
      const left = (await store.listChildren(ns, 100)).names;
      expect(left).toEqual(["r0", "r2", "r4"]);
    }
  });

  it("lists children in pages with a token", async () => {
    const first = await store.listChildren("n1", 2);
    expect(first).toEqual({ names: ["r0", "r2"], next: "r2" });
    expect(await store.listChildren("n1", 2, first.next)).toEqual({ names: ["r4"], next: undefined });
    expect(await store.listChildren("nope", 2)).toEqual({ names: [] });
  });
});

describe("waitForBlobStore", () => {
  const log = { info: () => undefined, warn: () => undefined };
  it("retries a store that is not answering yet, with growing waits", async () => {
    let calls = 0;
    const waits: number[] = [];
    const s: CreatedBlobStore = {
      store: new FileBlobStore("/nonexistent"),
      where: "test",
      ready: async () => {
        if (++calls < 4) throw new BlobStoreUnavailableError("not yet", false);
      },
    };
    await waitForBlobStore(s, log, async (ms) => void waits.push(ms));
    expect(calls).toBe(4);
    expect(waits).toEqual([500, 1000, 2000]);
  });

  it("does not retry a permanent error (a missing bucket)", async () => {
    let calls = 0;
    const s: CreatedBlobStore = {
      store: new FileBlobStore("/nonexistent"),
      where: "test",
      ready: async () => {
        calls++;
        throw new BlobStoreUnavailableError('s3 bucket "x" does not exist (TRELLIS_S3_BUCKET)', true);
      },
    };
    await expect(waitForBlobStore(s, log, async () => undefined)).rejects.toThrow(/TRELLIS_S3_BUCKET/);
    expect(calls).toBe(1);
  });
});
