// The streaming form reader: part headers as FormData read them, parts in order from a body that
// arrives in any chunks, and malformed forms refused.
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { MultipartError, TooManyPartsError, boundaryOf, formParts, parseDisposition } from "./multipart.js";

const B = "----trellis0test";
const CT = `multipart/form-data; boundary=${B}`;

function form(parts: { head: string; body: string | Buffer }[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) out.push(Buffer.from(`--${B}\r\n${p.head}\r\n\r\n`), Buffer.from(p.body), Buffer.from("\r\n"));
  out.push(Buffer.from(`--${B}--\r\n`));
  return Buffer.concat(out);
}

/** Every part as {name, filename, type, text}, the body fed `size` bytes at a time. */
async function read(body: Buffer, size = body.length, maxParts = 100) {
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size));
  const out: { name: string; filename: string | undefined; type: string; text: string }[] = [];
  for await (const p of formParts(CT, Readable.from(chunks), { maxParts })) {
    const bytes: Buffer[] = [];
    for await (const c of p.body) bytes.push(c as Buffer);
    out.push({ name: p.name, filename: p.filename, type: p.type, text: Buffer.concat(bytes).toString() });
  }
  return out;
}

describe("boundaryOf and parseDisposition", () => {
  it("finds the boundary, quoted or not", () => {
    expect(boundaryOf("multipart/form-data; boundary=abc")).toBe("abc");
    expect(boundaryOf('multipart/form-data; charset=x; Boundary="a b"')).toBe("a b");
    expect(boundaryOf("multipart/form-data")).toBeUndefined();
  });

  it("reads name and filename (quoted, escaped, plain, RFC 5987) of form-data only", () => {
    expect(parseDisposition('form-data; name="a"')).toEqual({ name: "a", filename: undefined });
    expect(parseDisposition('Form-Data; NAME="a\\"b"; filename=""')).toEqual({ name: 'a"b', filename: "" });
    expect(parseDisposition("form-data ; name = doc ; filename = x.pdf")).toEqual({ name: "doc", filename: "x.pdf" });
    expect(parseDisposition('form-data; name="f"; filename="a"; filename*=utf-8\'\'%E2%82%AC.txt')).toEqual({
      name: "f",
      filename: "€.txt",
    });
    expect(parseDisposition('form-data; name=""')).toEqual({ name: "", filename: undefined });
    expect(parseDisposition('attachment; name="a"')).toBeUndefined();
    expect(parseDisposition('form-data; filename="a"')).toBeUndefined();
    expect(parseDisposition('form-data; name="unterminated')).toBeUndefined();
    expect(parseDisposition('form-dataX; name="a"')).toBeUndefined();
  });
});

describe("formParts", () => {
  const body = form([
    { head: 'Content-Disposition: form-data; name="0"; filename="a.bin"', body: Buffer.from([0, 1, 2, 255]) },
    { head: 'Content-Disposition: form-data; name="who"', body: "naïve" },
    {
      head: 'Content-Disposition: form-data; name="doc"; filename="d"\r\nContent-Type:  Text/CSV ; Charset=UTF-8 ',
      body: "a,b",
    },
    { head: 'Content-Disposition: form-data; name="typed"\r\nContent-Type: application/json', body: "[1]" },
    { head: 'Content-Disposition: form-data; name="odd"; filename="o"\r\nContent-Type: text/é', body: "x" },
    { head: 'Content-Disposition: form-data; name="empty"; filename=""', body: "" },
  ]);
  const expected = [
    { name: "0", filename: "a.bin", type: "text/plain", text: Buffer.from([0, 1, 2, 255]).toString() },
    { name: "who", filename: undefined, type: "", text: "naïve" },
    // The whole Content-Type, lowercased (parameters kept), as File.type had it.
    { name: "doc", filename: "d", type: "text/csv ; charset=utf-8", text: "a,b" },
    // No filename: a plain field, whatever its Content-Type says.
    { name: "typed", filename: undefined, type: "", text: "[1]" },
    { name: "odd", filename: "o", type: "", text: "x" },
    { name: "empty", filename: "", type: "text/plain", text: "" },
  ];

  it("yields the parts in order, whatever the chunks", async () => {
    for (const size of [1, 2, 3, 7, 64, body.length]) expect(await read(body, size)).toEqual(expected);
  });

  it("drains a part the consumer leaves unread", async () => {
    const names: string[] = [];
    for await (const p of formParts(CT, Readable.from([body]), { maxParts: 100 })) names.push(p.name);
    expect(names).toEqual(expected.map((p) => p.name));
  });

  it("refuses malformed forms and too many parts", async () => {
    const whole = form([{ head: 'Content-Disposition: form-data; name="a"', body: "1" }]);
    await expect(read(whole.subarray(0, whole.length - 10))).rejects.toBeInstanceOf(MultipartError);
    await expect(read(form([{ head: "Content-Type: text/plain", body: "1" }]))).rejects.toThrow(
      /without Content-Disposition/,
    );
    const many = form(
      Array.from({ length: 5 }, (_, i) => ({ head: `Content-Disposition: form-data; name="k${i}"`, body: "1" })),
    );
    expect(await read(many, many.length, 5)).toHaveLength(5);
    await expect(read(many, many.length, 4)).rejects.toBeInstanceOf(TooManyPartsError);
    await expect(
      (async () => {
        for await (const p of formParts("multipart/form-data", Readable.from([whole]), { maxParts: 1 })) void p;
      })(),
    ).rejects.toThrow(/no boundary/);
  });
});
