import { describe, expect, it } from "vitest";
import { FrameDecoder, FrameError, encodeFrame } from "./framing.js";

const frame = (obj: unknown): Buffer => {
  const body = Buffer.from(JSON.stringify(obj), "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  return Buffer.concat([head, body]);
};

describe("framing", () => {
  it("encodes a 4-byte big-endian length and UTF-8 JSON", () => {
    const f = encodeFrame({ type: "welcome", protocol: 1, note: "é" });
    const body = JSON.stringify({ type: "welcome", protocol: 1, note: "é" });
    expect(f.readUInt32BE(0)).toBe(Buffer.byteLength(body));
    expect(f.subarray(4).toString("utf8")).toBe(body);
  });

  it("decodes what it encodes", () => {
    const d = new FrameDecoder();
    expect(d.push(encodeFrame({ type: "hello", functions: [{ name: "f" }] }))).toEqual([
      { type: "hello", functions: [{ name: "f" }] },
    ]);
    expect(d.pending).toBe(0);
  });

  it("reassembles a frame split at every byte, header included", () => {
    const bytes = frame({ type: "result", call: "r1", output: { json: [1, 2, "ü"] } });
    const d = new FrameDecoder();
    const got = [];
    for (let i = 0; i < bytes.length; i++) got.push(...d.push(bytes.subarray(i, i + 1)));
    expect(got).toEqual([{ type: "result", call: "r1", output: { json: [1, 2, "ü"] } }]);
    expect(d.pending).toBe(0);
  });

  it("returns several frames from one chunk, keeping a partial tail for later", () => {
    const a = frame({ type: "a" });
    const b = frame({ type: "b", n: 2 });
    const c = frame({ type: "c", big: "x".repeat(10_000) });
    const all = Buffer.concat([a, b, c]);
    const d = new FrameDecoder();
    const cut = a.length + b.length + 7;
    expect(d.push(all.subarray(0, cut)).map((m) => m.type)).toEqual(["a", "b"]);
    expect(d.pending).toBe(7);
    expect(d.push(all.subarray(cut)).map((m) => m.type)).toEqual(["c"]);
  });

  it("rejects an oversize frame from its header, before the body arrives", () => {
    const d = new FrameDecoder(1024);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(1025, 0);
    expect(() => d.push(head)).toThrow(FrameError);
    expect(() => d.push(head)).toThrow(/1025 bytes exceeds the 1024-byte limit/);
  });

  it("refuses to encode an oversize frame", () => {
    expect(() => encodeFrame({ type: "x", s: "y".repeat(2000) }, 1024)).toThrow(/exceeds the 1024-byte limit/);
  });

  it("rejects bodies that are not a JSON object with a string type", () => {
    const raw = (s: string | Buffer) => {
      const body = typeof s === "string" ? Buffer.from(s) : s;
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length, 0);
      return Buffer.concat([head, body]);
    };
    expect(() => new FrameDecoder().push(raw("{nope"))).toThrow(/not UTF-8 JSON/);
    expect(() => new FrameDecoder().push(raw("[1]"))).toThrow(/JSON object/);
    expect(() => new FrameDecoder().push(raw('{"type": 3}'))).toThrow(/string 'type'/);
    expect(() => new FrameDecoder().push(raw(Buffer.from([0x7b, 0xff, 0x7d])))).toThrow(/not UTF-8/);
  });

  it("accepts an empty object body only with a type", () => {
    expect(() => new FrameDecoder().push(frame({}))).toThrow(/type/);
  });
});
