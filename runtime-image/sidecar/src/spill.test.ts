// Spilled values (PROTOCOL.md §4): files of the values directory streamed to and from the store
// through presigned URLs, with the sidecar's memory independent of the value's size.
import { createHash } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import v8 from "node:v8";
import vm from "node:vm";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type Assignment, createLogger, MAX_FRAME_BYTES } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import { AttemptBook } from "./attempt-book.js";
import type { Attempt } from "./attempts.js";
import { Blobs, type SpillTo } from "./blobs.js";
import { Dispatcher } from "./dispatch.js";
import { FakeWorker, HELLO } from "./fake-worker.testlib.js";
import type { WorkerMessage } from "./framing.js";
import { Notifier } from "./notifier.js";
import type { Link } from "./pod-state.js";
import { SpillDir } from "./spill.js";
import { type OperatorValue, toWorker } from "./values.js";
import type { Waiter } from "./waiter.js";
import { type Session, WorkerServer, type SessionHandlers } from "./worker-link.js";

const MiB = 1024 * 1024;

/** An object store over HTTP that keeps objects on disk (its memory must not blur the sidecar's). */
async function diskStore(root: string) {
  const objects = new Map<string, { path: string; sha: string; size: number; contentLength?: string }>();
  let failWith = 0;
  const server: Server = createServer((req, res) => {
    const key = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.slice(1));
    if (failWith) return void res.writeHead(failWith).end();
    if (req.method === "PUT") {
      const path = join(root, `obj-${objects.size}`);
      const hash = createHash("sha256");
      let size = 0;
      req.on("data", (c: Buffer) => {
        hash.update(c);
        size += c.length;
      });
      pipeline(req, createWriteStream(path)).then(
        () => {
          objects.set(key, { path, sha: hash.digest("hex"), size, contentLength: req.headers["content-length"] });
          res.writeHead(200).end();
        },
        () => res.writeHead(500).end(),
      );
      return;
    }
    const o = objects.get(key);
    if (!o) return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": String(o.size) });
    createReadStream(o.path).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  const base = `http://127.0.0.1:${port}`;
  let n = 0;
  const urls: string[] = [];
  const api = {
    blobUrls(body: { put?: { call: string; size: number }; get?: string[] }) {
      urls.push(JSON.stringify(body));
      const put = body.put ? { blob: `ns/${body.put.call}/${n++}`, url: "" } : undefined;
      if (put) put.url = `${base}/${encodeURIComponent(put.blob)}`;
      const get = body.get?.map((blob) => ({ blob, url: `${base}/${encodeURIComponent(blob)}` }));
      return Promise.resolve({ ok: true as const, status: 200, body: { put, get, expiresInSeconds: 300 } });
    },
    blobPut() {
      throw new Error("bytes must not go through the operator");
    },
  };
  return {
    api: api as unknown as RuntimeApi,
    objects,
    urls,
    fail: (status: number) => (failWith = status),
    /** Stores an object directly (a blob another pod wrote). */
    async put(key: string, write: (path: string) => Promise<void>) {
      const path = join(root, `obj-${objects.size}`);
      await write(path);
      const data = readFileSync(path);
      objects.set(key, { path, sha: createHash("sha256").update(data).digest("hex"), size: data.length });
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A raw document of `n` bytes written in chunks (as the worker does), and the file's sha256. */
async function writeRawDocument(path: string, n: number): Promise<{ sha: string; size: number }> {
  const hash = createHash("sha256");
  const out = createWriteStream(path);
  let size = 0;
  const write = (b: Buffer | string) => {
    const buf = typeof b === "string" ? Buffer.from(b) : b;
    hash.update(buf);
    size += buf.length;
    return out.write(buf) ? Promise.resolve() : new Promise<void>((r) => out.once("drain", () => r()));
  };
  await write('{"raw":{"contentType":"application/x-test","data":"');
  const chunk = Buffer.alloc(3 * MiB);
  for (let done = 0; done < n; done += chunk.length) {
    const len = Math.min(chunk.length, n - done);
    for (let i = 0; i < len; i++) chunk[i] = (done + i) % 251;
    await write(chunk.subarray(0, len).toString("base64"));
  }
  await write('"}}');
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
  return { sha: hash.digest("hex"), size };
}

// A collection before measuring, so the garbage of writing the test file does not hide growth.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/**
 * Runs `f` while sampling heapUsed + arrayBuffers: the peak growth over the start as sampled
 * (garbage not yet collected included) and as live memory (sampled right after a collection).
 */
async function peakGrowth(f: () => Promise<unknown>): Promise<{ raw: number; live: number }> {
  const used = () => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  gc();
  const start = used();
  let raw = start;
  let live = start;
  let tick = 0;
  const t = setInterval(() => {
    raw = Math.max(raw, used());
    if (++tick % 4 === 0) {
      gc();
      live = Math.max(live, used());
    }
  }, 5);
  try {
    await f();
  } finally {
    clearInterval(t);
  }
  return { raw: Math.max(raw, used()) - start, live: live - start };
}

const report = (what: string, size: number, g: { raw: number; live: number }) =>
  process.stdout.write(
    `${what}: ${size} bytes; sidecar heapUsed+arrayBuffers peak growth ${(g.raw / MiB).toFixed(1)} MiB sampled, ${(g.live / MiB).toFixed(1)} MiB live\n`,
  );

const fileSha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("spilled values through presigned URLs", { timeout: 120_000 }, () => {
  let root: string;
  let values: string;
  let store: Awaited<ReturnType<typeof diskStore>>;
  let blobs: Blobs;

  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), "trellis-spill-"));
    values = join(root, "values");
    mkdirSync(join(root, "store"));
    store = await diskStore(join(root, "store"));
    blobs = new Blobs(store.api, () => Promise.resolve());
    blobs.direct = true;
    blobs.spillDir = new SpillDir(values, 8 * MiB).init();
  });

  afterEach(async () => {
    await store.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("uploads a spilled 100 MiB raw output byte for byte, streaming, and removes the file", async () => {
    const path = join(values, "w42-0.json");
    const { sha, size } = await writeRawDocument(path, 100 * MiB);
    let out: unknown;
    const growth = await peakGrowth(async () => {
      out = await blobs.outbound({ spill: { path, size } }, "r1", "output");
    });
    expect(out).toEqual({ blob: "ns/r1/0" });
    const o = store.objects.get("ns/r1/0")!;
    expect(o.size).toBe(size);
    expect(o.contentLength).toBe(String(size)); // a presigned PUT needs the exact length
    expect(o.sha).toBe(sha);
    expect(readdirSync(values)).toEqual([]);
    expect(blobs.stats.spilledOut).toBe(1);
    report("spill upload", size, growth);
    // The in-process store's buffers count too; the value is 100 MiB (133 MiB as base64).
    expect(growth.live).toBeLessThan(24 * MiB);
    expect(growth.raw).toBeLessThan(80 * MiB);
  });

  it("hands a large blob input to the worker as a spill file, streamed from the store", async () => {
    const { sha, size } = await writeRawDocument(join(root, "doc.json"), 100 * MiB);
    await store.put("ns/r0/big", (p) => pipeline(createReadStream(join(root, "doc.json")), createWriteStream(p)));
    const files: string[] = [];
    let form: unknown;
    const growth = await peakGrowth(async () => {
      form = await blobs.inbound({ blob: "ns/r0/big" }, "args[0]", { spill: true, files });
    });
    const spill = (form as { spill: { path: string; size: number } }).spill;
    expect(spill.size).toBe(size);
    expect(files).toEqual([spill.path]);
    expect(readdirSync(values)).toEqual([spill.path.slice(values.length + 1)]);
    expect(fileSha(spill.path)).toBe(sha);
    report("spill download", size, growth);
    expect(growth.live).toBeLessThan(24 * MiB);
    expect(growth.raw).toBeLessThan(80 * MiB);
    // In a list too (each item its own file); a worker that did not agree gets it inline.
    const small = { raw: { contentType: "text/plain", data: "aGk=" } };
    await store.put("ns/r0/small", async (p) => writeFileSync(p, JSON.stringify(small)));
    expect(await blobs.inbound({ blob: "ns/r0/small" }, "a", { spill: true, files })).toEqual(small);
    expect(await blobs.inbound({ blob: "ns/r0/small" }, "a", { spill: false })).toEqual(small);
    const listed = await blobs.inbound({ list: [{ blob: "ns/r0/big" }, { value: 1 }] }, "a", { spill: true, files });
    expect((listed as { list: unknown[] }).list[1]).toEqual({ json: 1 });
    expect(Object.keys((listed as { list: object[] }).list[0]!)).toEqual(["spill"]);
    // Only the files handed over are left; small ones were read and removed.
    expect(readdirSync(values).length).toBe(2);
  });

  it("reads a blob of a {list} document inline, never as a spill file", async () => {
    const doc = { list: [{ value: "x".repeat(9 * MiB) }] };
    await store.put("ns/r0/list", async (p) => writeFileSync(p, JSON.stringify(doc)));
    const form = await blobs.inbound({ blob: "ns/r0/list" }, "a", { spill: true, files: [] });
    expect(form).toEqual({ list: [{ json: "x".repeat(9 * MiB) }] });
    expect(readdirSync(values)).toEqual([]);
  });

  it("uploads spilled list items one by one; a small spilled value goes inline", async () => {
    const big = join(values, "w42-1.json");
    const { size } = await writeRawDocument(big, 100_000);
    const small = join(values, "w42-2.json");
    writeFileSync(small, '{"value":[1,2]}');
    const out = await blobs.outbound(
      { list: [{ spill: { path: big, size } }, { spill: { path: small, size: 15 } }, { json: 3 }] },
      "r1",
      "calls[0].args[0]",
    );
    expect(out).toEqual({ list: [{ blob: "ns/r1/0" }, { value: [1, 2] }, { value: 3 }] });
    expect(readdirSync(values)).toEqual([]);
  });

  it("refuses spill forms outside the values dir, links, wrong sizes and non-documents", async () => {
    const outside = join(root, "secret");
    writeFileSync(outside, '{"value":"token"}');
    await expect(blobs.outbound({ spill: { path: outside, size: 17 } }, "r1", "output")).rejects.toThrow(
      /is not a file of/,
    );
    expect(existsSync(outside)).toBe(true); // never removed either
    const link = join(values, "w42-3.json");
    symlinkSync(outside, link);
    await expect(blobs.outbound({ spill: { path: link, size: 17 } }, "r1", "output")).rejects.toThrow(
      /not a regular file/,
    );
    expect(existsSync(outside)).toBe(true);
    const wrong = join(values, "w42-4.json");
    writeFileSync(wrong, '{"value":1}');
    await expect(blobs.outbound({ spill: { path: wrong, size: 99 } }, "r1", "output")).rejects.toThrow(
      /holds 11 bytes, not 99/,
    );
    const junk = join(values, "w42-5.json");
    writeFileSync(junk, "#!/bin/sh\n");
    await expect(blobs.outbound({ spill: { path: junk, size: 10 } }, "r1", "output")).rejects.toThrow(
      /must hold one of/,
    );
    expect(readdirSync(values)).toEqual([]); // every file named by a form is gone, used or not
    expect(store.objects.size).toBe(0);
  });

  it("removes the file when the upload fails", async () => {
    const path = join(values, "w42-6.json");
    const { size } = await writeRawDocument(path, 9 * MiB);
    store.fail(400);
    await expect(blobs.outbound({ spill: { path, size } }, "r1", "output")).rejects.toThrow(/HTTP 400/);
    expect(readdirSync(values)).toEqual([]);
  });

  it("without presigned URLs, refuses a value over the frame limit, naming it", async () => {
    blobs.direct = false;
    const path = join(values, "w42-7.json");
    writeFileSync(path, '{"raw":{"contentType":"a/b","data":"');
    truncateSync(path, MAX_FRAME_BYTES + 1); // sparse: cheap
    await expect(blobs.outbound({ spill: { path, size: MAX_FRAME_BYTES + 1 } }, "r1", "output")).rejects.toThrow(
      `over the ${MAX_FRAME_BYTES}-byte limit`,
    );
    expect(readdirSync(values)).toEqual([]);
  });

  it("removes what a message names only inside the dir, and a lost worker's files by pid", () => {
    const dir = blobs.spillDir!;
    const outside = join(root, "keep");
    writeFileSync(outside, "x");
    for (const n of ["w42-8.json", "w42-9.json", "w7-1.json", "s1-1-a.json"]) writeFileSync(join(values, n), "{}");
    dir.removeNamed({
      type: "result",
      output: { list: [{ spill: { path: join(values, "w42-8.json"), size: 2 } }, { spill: { path: outside } }] },
    });
    expect(existsSync(outside)).toBe(true);
    expect(readdirSync(values).sort()).toEqual(["s1-1-a.json", "w42-9.json", "w7-1.json"]);
    dir.removeWorkerFiles(42);
    expect(readdirSync(values).sort()).toEqual(["s1-1-a.json", "w7-1.json"]);
    new SpillDir(values, 1).init(); // a new sidecar starts with an empty dir
    expect(readdirSync(values)).toEqual([]);
  });
});

describe("spill handshake", () => {
  const handlers = (): SessionHandlers & { hellos: unknown[] } => {
    const hellos: unknown[] = [];
    return {
      hellos,
      ready: (_s, h) => hellos.push(h),
      fatal: () => {},
      message: () => {},
      invalid: () => {},
      lost: () => {},
    };
  };
  const log = createLogger({ level: "error", sink: () => {} });

  it("offers the values dir only to a worker that announced spill, and only when it has one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "trellis-spill-hs-"));
    const offer = { dir: join(dir, "values"), threshold: 8 * MiB };
    const server = new WorkerServer(
      join(dir, "w.sock"),
      handlers(),
      { intervalMs: 10_000, timeoutMs: 60_000 },
      log,
      offer,
    );
    await server.listen();
    try {
      const w1 = await FakeWorker.connect(join(dir, "w.sock"));
      expect(await w1.handshake({ ...HELLO, spill: true })).toEqual({ type: "welcome", protocol: 1, spill: offer });
      expect(server.session?.spill).toBe(true);
      const w2 = await FakeWorker.connect(join(dir, "w.sock"));
      expect(await w2.handshake(HELLO)).toEqual({ type: "welcome", protocol: 1 }); // an older worker
      expect(server.session?.spill).toBe(false);
      server.spillOffer = undefined; // an older (or dir-less) sidecar
      const w3 = await FakeWorker.connect(join(dir, "w.sock"));
      expect(await w3.handshake({ ...HELLO, spill: true })).toEqual({ type: "welcome", protocol: 1 });
      expect(server.session?.spill).toBe(false);
      for (const w of [w1, w2, w3]) w.end();
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("spill files of an attempt's inputs", () => {
  it("go to a worker that agreed as spill forms and are removed when the attempt ends", async () => {
    const dir = mkdtempSync(join(tmpdir(), "trellis-spill-att-"));
    try {
      const log = createLogger({ level: "error", sink: () => {} });
      const book = new AttemptBook({ progressIntervalMs: 0, sendProgress: () => {}, changed: new Notifier(), log });
      const sent: WorkerMessage[] = [];
      const session = { spill: true, send: (m: WorkerMessage) => sent.push(m) > 0 } as unknown as Session;
      const link: Link = { session, waiter: {} as Waiter, registered: true };
      let n = 0;
      const blobs = {
        // What Blobs.inbound does for a large blob when `to.spill`: a file, listed in `to.files`.
        inbound: (v: OperatorValue, where: string, to?: SpillTo) => {
          if (!v.blob || !to?.spill) return Promise.resolve(toWorker(v, where));
          const path = join(dir, `s-${n++}.json`);
          writeFileSync(path, '{"value":1}');
          if (Array.isArray(to.files)) to.files.push(path);
          return Promise.resolve({ spill: { path, size: 11 } });
        },
      };
      const reporter = { fail: (att: Attempt) => book.finish(att) };
      const d = new Dispatcher({ state: { link, draining: false }, book, blobs, reporter, graceMs: 1000, log });
      const a: Assignment = {
        call: "r1",
        attempt: 1,
        function: "f",
        request: "r1",
        args: [{ blob: "ns/r1/a" }, { value: 2 }],
        kwargs: { k: { blob: "ns/r1/b" } },
        headers: {},
        timeoutSeconds: 20,
        isRoot: true,
      };
      const att = book.open(a)!;
      d.dispatch(att, a, link);
      await vi.waitFor(() => expect(sent.length).toBe(1));
      const assign = sent[0] as unknown as { args: unknown[]; kwargs: Record<string, unknown> };
      expect(assign.args).toEqual([{ spill: { path: join(dir, "s-0.json"), size: 11 } }, { json: 2 }]);
      expect(assign.kwargs).toEqual({ k: { spill: { path: join(dir, "s-1.json"), size: 11 } } });
      expect(readdirSync(dir).length).toBe(2);
      book.finish(att); // the worker never read them (e.g. it was cancelled): gone all the same
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
