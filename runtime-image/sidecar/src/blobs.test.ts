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
