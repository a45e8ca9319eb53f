// Files through a real listening server and a FileBlobStore: raw bodies and file parts are
// streamed into raw documents, limits and client aborts leave no blob behind, and a File output
// is streamed back byte for byte under its content type.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { FileBlobStore } from "../blobs/index.js";
import { world } from "./fakes.js";
import { buildHttpApi } from "./index.js";
import { rawDocument } from "./raw-stream.js";

const MiB = 1024 * 1024;
let app: FastifyInstance | undefined;
let dir: string | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function serve(limits: { maxFileBytes?: number; bodyLimit?: number } = {}) {
  const w = world();
  dir = mkdtempSync(join(tmpdir(), "trellis-streaming-"));
  const root = dir;
  const store = new FileBlobStore(root);
  app = await buildHttpApi({ ...w.deps, blobs: store, ...limits });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  /** Every file under the store, temp files of a put in progress too. */
  const files = (): string[] =>
    existsSync(join(root, "blobs"))
      ? readdirSync(join(root, "blobs"), { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile())
          .map((e) => join(e.parentPath, e.name).slice(root.length + 7))
      : [];
  return { w, store, origin, url: `${origin}/v1/namespaces/team/applications/greet`, files };
}

const rawDoc = (contentType: string, data: Buffer) =>
  Buffer.from(JSON.stringify({ raw: { contentType, data: data.toString("base64") } }));

/** A body stream of `total` bytes in `chunk`-byte pieces (fetch sends it chunked, without a length). */
function streamOf(total: number, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(c) {
      if (sent >= total) return c.close();
      const n = Math.min(chunk, total - sent);
      sent += n;
      c.enqueue(new Uint8Array(n).fill(sent % 251));
    },
  });
}

const post = (url: string, body: BodyInit | Buffer, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", body, headers, duplex: "half" } as RequestInit);

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("Files into the blob store", () => {
  it("streams a 20 MiB raw body into a raw document that decodes byte for byte", async () => {
    const s = await serve();
    const data = randomBytes(20 * MiB);
    const r = await post(s.url, data, { "content-type": "application/x-tar" });
    expect(r.status).toBe(201);
    const id = ((await r.json()) as { request_id: string }).request_id;
    const ref = s.w.calls.get(`team/${id}`)!.spec.args![0]!.blob!;
    expect(ref).toMatch(new RegExp(`^team/${id}/`));
    const doc = (await s.store.read(ref))!;
    expect(doc.equals(rawDoc("application/x-tar", data))).toBe(true);
    expect(s.files()).toEqual([ref]);
  });

  it("streams a body sent without a length; a small one stays inline", async () => {
    const s = await serve();
    const r = await post(s.url, streamOf(3 * MiB + 1), { "content-type": "application/octet-stream" });
    expect(r.status).toBe(201);
    const id = ((await r.json()) as { request_id: string }).request_id;
    const doc = JSON.parse((await s.store.read(s.w.calls.get(`team/${id}`)!.spec.args![0]!.blob!))!.toString());
    expect(Buffer.from(doc.raw.data, "base64").length).toBe(3 * MiB + 1);
    const small = await post(s.url, streamOf(1000, 7), { "content-type": "text/plain" });
    const args = s.w.calls.get(`team/${((await small.json()) as { request_id: string }).request_id}`)!.spec.args;
    expect(args).toEqual([{ raw: { contentType: "text/plain", data: expect.any(String) } }]);
  });

  it("takes a form with two streamed file parts, a JSON part, a small file and a field", async () => {
    const s = await serve();
    const a = randomBytes(3 * MiB + 2);
    const csv = randomBytes(MiB + 1);
    const f = new FormData();
    f.append("0", new Blob([a], { type: "application/octet-stream" }), "a.bin");
    f.append("1", new Blob(['{"k":[1,2]}'], { type: "application/json" }), "1.json");
    f.append("doc", new Blob([csv], { type: "text/csv; charset=utf-8" }), "d.csv");
    f.append("small", new Blob(["PNG!"], { type: "image/png" }), "s.png");
    f.append("flag", "true");
    const r = await post(s.url, f);
    expect(r.status).toBe(201);
    const spec = s.w.calls.get(`team/${((await r.json()) as { request_id: string }).request_id}`)!.spec;
    expect(spec.args).toEqual([{ blob: expect.any(String) }, { value: { k: [1, 2] } }]);
    expect(spec.kwargs).toEqual({
      doc: { blob: expect.any(String) },
      small: { raw: { contentType: "image/png", data: Buffer.from("PNG!").toString("base64") } },
      flag: { value: true },
    });
    expect((await s.store.read(spec.args![0]!.blob!))!.equals(rawDoc("application/octet-stream", a))).toBe(true);
    expect((await s.store.read(spec.kwargs!.doc!.blob!))!.equals(rawDoc("text/csv; charset=utf-8", csv))).toBe(true);
    expect(s.files()).toHaveLength(2);
  });

  it("refuses a File over the file limit with 413, leaving no blob (announced, streamed, or a part)", async () => {
    const s = await serve({ maxFileBytes: MiB });
    const limit = `larger than the limit of ${MiB} bytes for a file`;
    const announced = await post(s.url, randomBytes(2 * MiB), { "content-type": "application/octet-stream" });
    expect(announced.status).toBe(413);
    expect(await announced.json()).toEqual({ code: "body_too_large", message: `body: ${limit}` });
    const streamed = await post(s.url, streamOf(2 * MiB), { "content-type": "application/octet-stream" });
    expect(streamed.status).toBe(413);
    expect(await streamed.json()).toEqual({ code: "body_too_large", message: `body: ${limit}` });
    // The first part is stored before the second is refused: both are gone.
    const f = new FormData();
    f.append("0", new Blob([randomBytes(MiB)]), "ok.bin");
    f.append("big", new Blob([randomBytes(2 * MiB)]), "big.bin");
    const part = await post(s.url, f);
    expect(part.status).toBe(413);
    expect(await part.json()).toEqual({ code: "body_too_large", message: `part big: ${limit}` });
    expect(s.files()).toEqual([]);
    expect(s.w.calls.m.size).toBe(0);
    // The JSON body limit is the body limit, not the file limit.
    const json = await post(s.url, JSON.stringify({ s: "x".repeat(2 * MiB) }), { "content-type": "application/json" });
    expect(json.status).toBe(201);
  });

  it("deletes what a refused form stored (a rule broken after a streamed part)", async () => {
    const s = await serve();
    const f = new FormData();
    f.append("who", new Blob([randomBytes(MiB)]), "a.bin");
    f.append("who", "again");
    const r = await post(s.url, f);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { message: string }).message).toBe("part who: given twice; send each argument once");
    expect(s.files()).toEqual([]);
  });

  it.each(["raw", "multipart"])("leaves no blob when the client goes away mid-upload (%s)", async (kind) => {
    const s = await serve();
    const boundary = "----abort0test";
    const req = httpRequest(s.url, {
      method: "POST",
      headers: {
        "content-type": kind === "raw" ? "application/octet-stream" : `multipart/form-data; boundary=${boundary}`,
        "transfer-encoding": "chunked",
      },
    });
    req.on("error", () => {});
    if (kind === "multipart") {
      // A whole first file part (stored), then a second one that never ends.
      const head = (name: string) =>
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${name}"\r\n\r\n`;
      req.write(head("first"));
      req.write(randomBytes(200 * 1024));
      req.write(`\r\n${head("second")}`);
    }
    // Until the store is writing this body (a temp file shows), then the connection breaks.
    const writing = () => s.files().some((f) => f.includes(".tmp-"));
    for (let i = 0; !writing(); i++) {
      if (i > 2000) throw new Error("the upload never reached the blob store");
      if (!req.write(randomBytes(64 * 1024))) await new Promise((r) => req.once("drain", r));
      await new Promise((r) => setTimeout(r, 1));
    }
    req.destroy();
    await until(() => s.files().length === 0, "the blobs of the aborted upload to go");
    expect(s.w.calls.m.size).toBe(0);
  });

  it("an Idempotency-Key retry keeps one blob; other bytes under the key are refused", async () => {
    const s = await serve();
    const data = randomBytes(200 * 1024);
    const send = (body: Buffer) =>
      post(s.url, body, { "content-type": "application/octet-stream", "idempotency-key": "file-1" });
    const first = await send(data);
    const again = await send(data);
    expect([first.status, again.status]).toEqual([201, 200]);
    expect(((await again.json()) as { request_id: string }).request_id).toBe(
      ((await first.json()) as { request_id: string }).request_id,
    );
    expect(s.files()).toHaveLength(1);
    const other = await send(randomBytes(200 * 1024));
    expect(other.status).toBe(422);
    expect(s.files()).toHaveLength(1);
  });
});

describe("File outputs from the blob store", () => {
  async function finished(s: Awaited<ReturnType<typeof serve>>, output: (id: string) => Promise<unknown>) {
    const r = await post(s.url, "1", { "content-type": "application/json" });
    const id = ((await r.json()) as { request_id: string }).request_id;
    s.w.update(id, { phase: "Succeeded", output: (await output(id)) as never });
    return `${s.url}/requests/${id}/output`;
  }

  it("streams a raw blob out: the exact bytes under their content type", async () => {
    const s = await serve();
    const data = randomBytes(8 * MiB + 1);
    const url = await finished(s, async (id) => {
      await s.store.put(`team/${id}/out`, rawDocument("video/mp4", [data.subarray(0, 5), data.subarray(5)]));
      return { blob: `team/${id}/out` };
    });
    const r = await fetch(url);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("video/mp4");
    // Streamed: no length known up front.
    expect(r.headers.get("content-length")).toBeNull();
    const got = Buffer.from(await r.arrayBuffer());
    expect(createHash("sha256").update(got).digest("hex")).toBe(createHash("sha256").update(data).digest("hex"));
  });

  it("serves other blob documents as before (data first, JSON, a chain, a File in a list)", async () => {
    const s = await serve();
    const dataFirst = await finished(s, async (id) => {
      const doc = JSON.stringify({ raw: { data: Buffer.from("hello").toString("base64"), contentType: "text/x" } });
      await s.store.put(`team/${id}/d`, Buffer.from(doc));
      return { blob: `team/${id}/d` };
    });
    const r1 = await fetch(dataFirst);
    expect([r1.headers.get("content-type"), await r1.text()]).toEqual(["text/x", "hello"]);
    const chain = await finished(s, async (id) => {
      await s.store.put(`team/${id}/inner`, rawDocument("text/y", [Buffer.from("chained")]));
      await s.store.put(`team/${id}/outer`, Buffer.from(JSON.stringify({ blob: `team/${id}/inner` })));
      return { blob: `team/${id}/outer` };
    });
    const r2 = await fetch(chain);
    expect([r2.headers.get("content-type"), await r2.text()]).toEqual(["text/y", "chained"]);
    const json = await finished(s, async (id) => {
      await s.store.put(`team/${id}/v`, Buffer.from(JSON.stringify({ value: { big: "x".repeat(100_000) } })));
      return { blob: `team/${id}/v` };
    });
    expect(((await (await fetch(json)).json()) as { big: string }).big).toHaveLength(100_000);
    const inList = await finished(s, async (id) => {
      await s.store.put(`team/${id}/f`, rawDocument("text/z", [Buffer.from("f")]));
      return { list: [{ value: 1 }, { blob: `team/${id}/f` }] };
    });
    expect((await fetch(inList)).status).toBe(406);
  });
});
