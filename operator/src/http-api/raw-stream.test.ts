// The incremental base64 of raw documents: chunk boundaries anywhere, empty Files, 1-2 bytes
// carried between chunks, and the prefix of a stored document read as it arrives.
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  Base64Decoder,
  Base64Encoder,
  openRawDocument,
  parseRawPrefix,
  rawDocument,
  rawDocumentLimit,
} from "./raw-stream.js";

/** `data` cut at `at` (two chunks), or into pieces of `size`. */
const split = (data: Buffer, at: number): Buffer[] => [data.subarray(0, at), data.subarray(at)];
const pieces = (data: Buffer, size: number): Buffer[] => {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
};

function encode(chunks: Buffer[]): string {
  const enc = new Base64Encoder();
  return chunks.map((c) => enc.push(c)).join("") + enc.end();
}

function decode(parts: string[]): Buffer {
  const dec = new Base64Decoder();
  return Buffer.concat([...parts.map((p) => dec.push(p)), dec.end()]);
}

async function* from(chunks: Buffer[]): AsyncGenerator<Buffer> {
  for (const c of chunks) yield c;
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return Buffer.concat(out);
}

const SIZES = [0, 1, 2, 3, 4, 5, 6, 7, 100, 301];

describe("Base64Encoder", () => {
  it.each(SIZES)("%i bytes cut at every offset encode as the whole buffer", (n) => {
    const data = randomBytes(n);
    for (let at = 0; at <= n; at++) expect(encode(split(data, at))).toBe(data.toString("base64"));
    for (const size of [1, 2, 3, 4, 7]) expect(encode(pieces(data, size))).toBe(data.toString("base64"));
  });

  it("carries 1 or 2 bytes to the next chunk and pads them at the end", () => {
    const enc = new Base64Encoder();
    expect(enc.push(Buffer.from("a"))).toBe("");
    expect(enc.push(Buffer.from("b"))).toBe("");
    expect(enc.push(Buffer.from("cd"))).toBe("YWJj");
    expect(enc.end()).toBe("ZA==");
    expect(enc.push(Buffer.from("ab"))).toBe("");
    expect(enc.end()).toBe("YWI=");
    expect(enc.end()).toBe("");
  });

  it("does not keep a reference to a chunk the caller reuses", () => {
    const enc = new Base64Encoder();
    const chunk = Buffer.from("abcd");
    const first = enc.push(chunk);
    chunk.fill(0);
    expect(first + enc.end()).toBe(Buffer.from("abcd").toString("base64"));
  });
});

describe("Base64Decoder", () => {
  it.each(SIZES)("the base64 of %i bytes cut at every offset decodes to them", (n) => {
    const data = randomBytes(n);
    const text = data.toString("base64");
    for (let at = 0; at <= text.length; at++) expect(decode([text.slice(0, at), text.slice(at)])).toEqual(data);
    expect(decode([...text])).toEqual(data);
    // Unpadded and URL-safe text decode too (as Buffer.from does).
    expect(decode([text.replace(/=+$/, "")])).toEqual(data);
    expect(decode([data.toString("base64url")])).toEqual(data);
  });

  it("refuses characters outside the alphabet, data after padding and a lone last character", () => {
    expect(() => decode(['YW"Jj'])).toThrow(/outside the alphabet/);
    expect(() => decode(["YQ==", "YQ"])).toThrow(/after the padding/);
    expect(() => decode(["YQ=a"])).toThrow(/padding/);
    expect(() => decode(["Y==="])).toThrow(/padding/);
    expect(() => decode(["YWJjZ"])).toThrow(/one character/);
    expect(decode(["YQ", "=", "="])).toEqual(Buffer.from("a"));
  });
});

describe("rawDocument", () => {
  it.each([0, 1, 2, 3, 4, 1000])("writes byte-for-byte what JSON.stringify({raw}) writes (%i bytes)", async (n) => {
    const data = randomBytes(n);
    for (const ct of ["application/octet-stream", 'text/plain; name="a\\b"', "text/plain; title=é"]) {
      const whole = Buffer.from(JSON.stringify({ raw: { contentType: ct, data: data.toString("base64") } }));
      for (const at of [0, 1, 2, Math.floor(n / 2), n])
        expect(await collect(rawDocument(ct, from(split(data, at))))).toEqual(whole);
      expect(whole.length).toBeLessThanOrEqual(rawDocumentLimit(ct, n));
    }
  });
});

describe("parseRawPrefix", () => {
  const doc = Buffer.from(JSON.stringify({ raw: { contentType: 'text/csv; x="\\""', data: "QUJD" } }));
  const dataStart = doc.indexOf('"data":"') + '"data":"'.length;

  it("asks for more until the prefix is whole, then says where the data starts", () => {
    for (let n = 0; n < dataStart; n++) expect(parseRawPrefix(doc.subarray(0, n))).toBe("more");
    expect(parseRawPrefix(doc.subarray(0, dataStart))).toEqual({ contentType: 'text/csv; x="\\""', dataStart });
    expect(parseRawPrefix(doc)).toEqual({ contentType: 'text/csv; x="\\""', dataStart });
  });

  it("takes JSON whitespace; any other shape or key order is another document", () => {
    expect(parseRawPrefix(Buffer.from('{ "raw" : { "contentType" : "a/b" ,\n "data": "QQ=="}}'))).toEqual({
      contentType: "a/b",
      dataStart: 46,
    });
    for (const other of [
      { raw: { data: "QUJD", contentType: "a/b" } },
      { value: { raw: 1 } },
      { pickle: "gAM=" },
      { blob: "ns/r/x" },
      { raw: { contentType: "", data: "" } },
      { raw: { contentType: 3, data: "" } },
    ])
      expect(parseRawPrefix(Buffer.from(JSON.stringify(other)))).toBe("other");
  });
});

describe("openRawDocument", () => {
  it.each([0, 1, 2, 3, 4, 5, 300])("streams the bytes of a %i-byte File, chunks cut at every offset", async (n) => {
    const data = randomBytes(n);
    const doc = Buffer.from(JSON.stringify({ raw: { contentType: "image/png", data: data.toString("base64") } }));
    for (let at = 0; at <= doc.length; at++) {
      const opened = await openRawDocument(from(split(doc, at)));
      expect(opened.kind).toBe("raw");
      if (opened.kind !== "raw") return;
      expect(opened.contentType).toBe("image/png");
      expect(await collect(opened.bytes)).toEqual(data);
    }
    const byByte = await openRawDocument(from(pieces(doc, 1)));
    expect(byByte.kind === "raw" && (await collect(byByte.bytes))).toEqual(data);
  });

  it("reads any other document whole, as it was", async () => {
    for (const d of [{ value: { big: "x".repeat(5000) } }, { raw: { data: "QUJD", contentType: "a/b" } }, {}]) {
      const doc = Buffer.from(JSON.stringify(d));
      for (const at of [0, 1, 7, doc.length]) {
        const opened = await openRawDocument(from(split(doc, at)));
        expect(opened.kind).toBe("other");
        if (opened.kind === "other") expect(await opened.whole()).toEqual(doc);
      }
    }
    const empty = await openRawDocument(from([]));
    expect(empty.kind === "other" && (await empty.whole())).toEqual(Buffer.alloc(0));
  });

  it("fails mid-stream when the document turns out malformed after its prefix", async () => {
    const open = async (text: string) => {
      const o = await openRawDocument(from([Buffer.from(text)]));
      if (o.kind !== "raw") throw new Error("not raw");
      return collect(o.bytes);
    };
    await expect(open('{"raw":{"contentType":"a/b","data":"QUJD')).rejects.toThrow(/ends inside its data/);
    await expect(open('{"raw":{"contentType":"a/b","data":"QUJD","x":1}}')).rejects.toThrow(/not its last field/);
    await expect(open('{"raw":{"contentType":"a/b","data":"QU*D"}}')).rejects.toThrow(/alphabet/);
    expect(await open('{"raw":{"contentType":"a/b","data":"QUJD"} }\n')).toEqual(Buffer.from("ABC"));
  });

  it("closes the source when the reader stops early", async () => {
    let closed = false;
    async function* source() {
      try {
        yield Buffer.from('{"raw":{"contentType":"a/b","data":"');
        for (;;) yield Buffer.from("QUJD".repeat(1000));
      } finally {
        closed = true;
      }
    }
    const o = await openRawDocument(source());
    if (o.kind !== "raw") throw new Error("not raw");
    for await (const c of o.bytes) {
      expect(c.length).toBeGreaterThan(0);
      break;
    }
    expect(closed).toBe(true);
  });
});
