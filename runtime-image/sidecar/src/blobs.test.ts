import { describe, expect, it } from "vitest";
import type { RuntimeApi } from "./api.js";
import { BlobError, Blobs } from "./blobs.js";

/** Just the two blob routes of the runtime API, over a map. */
function storeApi(): { api: RuntimeApi; store: Map<string, Buffer> } {
  const store = new Map<string, Buffer>();
  const api = {
    blobPut(call: string, data: Buffer) {
      const ref = `ns/${call}/${store.size}`;
      store.set(ref, data);
      return Promise.resolve({ ok: true as const, status: 200, body: { blob: ref } });
    },
    blobGet(ref: string) {
      const data = store.get(ref);
      return Promise.resolve(
        data
          ? { ok: true as const, status: 200, body: data }
          : { ok: false as const, status: 404, verdict: "final" as const, code: "not_found", message: ref },
      );
    },
  };
  return { api: api as unknown as RuntimeApi, store };
}

const RAW = { raw: { contentType: "image/png", data: Buffer.from("\x89PNG....").toString("base64") } };

describe("blobs", () => {
  it("hands the worker a raw document stored as a blob unchanged", async () => {
    const { api, store } = storeApi();
    store.set("ns/r1/in", Buffer.from(JSON.stringify(RAW)));
    const blobs = new Blobs(api);
    expect(await blobs.inbound({ blob: "ns/r1/in" }, "args[0]")).toEqual(RAW);
    expect(await blobs.inbound({ list: [{ blob: "ns/r1/in" }, { value: 1 }] }, "args[0]")).toEqual({
      list: [RAW, { json: 1 }],
    });
  });

  it("offloads a big raw output as a blob whose document is the raw form", async () => {
    const { api, store } = storeApi();
    const blobs = new Blobs(api);
    const big = { raw: { contentType: "application/pdf", data: "QUJD".repeat(1000) } };
    const out = await blobs.outbound(big, "r1", "output", 1024);
    expect(out).toEqual({ blob: "ns/r1/0" });
    expect(JSON.parse(store.get("ns/r1/0")!.toString("utf8"))).toEqual(big);
    // Small ones stay inline, as the same form.
    expect(await blobs.outbound(RAW, "r1", "output", 1024)).toEqual(RAW);
    // And the stored one comes back to a worker as it went out.
    expect(await blobs.inbound(out, "resolved")).toEqual(big);
  });

  it("refuses a blob document that is no value form", async () => {
    const { api, store } = storeApi();
    store.set("ns/r1/bad", Buffer.from(JSON.stringify({ raw: { contentType: "text/plain" } })));
    store.set("ns/r1/two", Buffer.from(JSON.stringify({ raw: RAW.raw, value: 1 })));
    const blobs = new Blobs(api);
    await expect(blobs.inbound({ blob: "ns/r1/bad" }, "args[0]")).rejects.toThrow(BlobError);
    await expect(blobs.inbound({ blob: "ns/r1/two" }, "args[0]")).rejects.toThrow(
      /must hold exactly one of value, pickle, raw or list/,
    );
  });
});

describe("blobs through presigned URLs (directBlobs)", () => {
  /** A store over HTTP that fails the first `failures` requests with 503, and the runtime API's /blob-urls. */
  async function directStore(failures = 0) {
    const { createServer } = await import("node:http");
    const objects = new Map<string, Buffer>();
    const seen: string[] = [];
    let fail = failures;
    const server = createServer((req, res) => {
      const key = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.slice(1));
      seen.push(`${req.method} ${key}`);
      if (fail-- > 0) return void res.writeHead(503).end();
      if (req.method === "PUT") {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          objects.set(key, Buffer.concat(chunks));
          res.writeHead(200).end();
        });
        return;
      }
      const o = objects.get(key);
      if (!o) return void res.writeHead(404).end();
      res.writeHead(200, { "content-length": o.length }).end(o);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    let n = 0;
    const asked: unknown[] = [];
    const api = {
      blobPut: () => Promise.reject(new Error("the operator must not carry the bytes")),
      blobGet: () => Promise.reject(new Error("the operator must not carry the bytes")),
      blobUrls(body: { put?: { call: string; size: number }; get?: string[] }) {
        asked.push(body);
        if (body.put?.call === "refused")
          return Promise.resolve({
            ok: false as const,
            status: 403,
            verdict: "final" as const,
            code: "not_assigned",
            message: "no",
          });
        const put = body.put ? { blob: `ns/${body.put.call}/${n++}`, url: "" } : undefined;
        if (put) put.url = `${base}/${encodeURIComponent(put.blob)}`;
        const get = body.get?.map((blob) => ({ blob, url: `${base}/${encodeURIComponent(blob)}` }));
        return Promise.resolve({ ok: true as const, status: 200, body: { put, get, expiresInSeconds: 300 } });
      },
    };
    return {
      api: api as unknown as RuntimeApi,
      objects,
      seen,
      asked,
      close: () => new Promise((r) => server.close(r)),
    };
  }

  it("stores and reads large values in the store directly, asking the operator only for URLs", async () => {
    const s = await directStore();
    const blobs = new Blobs(s.api, async () => undefined);
    blobs.direct = true;
    const big = { value: "x".repeat(200_000) };
    const out = await blobs.outbound({ json: big.value }, "r1", "output", 1024);
    expect(out).toEqual({ blob: "ns/r1/0" });
    expect(JSON.parse(s.objects.get("ns/r1/0")!.toString("utf8"))).toEqual(big);
    expect(s.asked[0]).toEqual({ put: { call: "r1", size: s.objects.get("ns/r1/0")!.length } });
    expect(await blobs.inbound(out, "args[0]")).toEqual({ json: big.value });
    expect(blobs.stats).toMatchObject({ uploads: 1, downloads: 1, direct: 2 });
    await s.close();
  });

  it("retries a store answering 503 with a fresh URL each time; an operator refusal is final", async () => {
    const s = await directStore(2);
    const sleeps: number[] = [];
    const blobs = new Blobs(s.api, async (ms) => void sleeps.push(ms));
    blobs.direct = true;
    const out = await blobs.outbound({ json: "y".repeat(5000) }, "r2", "output", 1024);
    expect(s.seen.filter((x) => x.startsWith("PUT"))).toHaveLength(3);
    expect(sleeps).toEqual([400, 800]);
    expect(s.asked).toHaveLength(3);
    expect(out.blob).toBe("ns/r2/2");
    await expect(blobs.outbound({ json: "z".repeat(5000) }, "refused", "output", 1024)).rejects.toThrow(
      /output: storing a \d+-byte value failed: not_assigned: no/,
    );
    await expect(blobs.inbound({ blob: "ns/r2/missing" }, "args[0]")).rejects.toThrow(
      /args\[0\]: reading blob ns\/r2\/missing failed: the store has no such object/,
    );
    await s.close();
  });
});
