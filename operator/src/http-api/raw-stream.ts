// Raw values (Files) as blob documents, streamed both ways with bounded memory. A raw BlobDocument
// is `{"raw":{"contentType":<string>,"data":"<base64>"}}`; writing one is a fixed prefix, the
// base64 of the bytes encoded chunk by chunk, and `"}}`. Reading one back streams the bytes when
// the document has that shape with `data` last (as JSON.stringify and the Python SDK write it);
// any other document is read whole, as before.

const EMPTY = Buffer.alloc(0);
const asBuffer = (c: Uint8Array): Buffer =>
  Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);

/** Base64 of a byte stream: whole 3-byte groups are encoded as they come, 0-2 bytes wait for the next chunk. */
export class Base64Encoder {
  private carry: Buffer = EMPTY;

  push(chunk: Uint8Array): string {
    let c = asBuffer(chunk);
    let out = "";
    if (this.carry.length) {
      const need = 3 - this.carry.length;
      if (c.length < need) {
        this.carry = Buffer.concat([this.carry, c]);
        return "";
      }
      out = Buffer.concat([this.carry, c.subarray(0, need)]).toString("base64");
      c = c.subarray(need);
    }
    const whole = c.length - (c.length % 3);
    // A copy: the caller may reuse the chunk's memory.
    this.carry = Buffer.from(c.subarray(whole));
    return out + c.toString("base64", 0, whole);
  }

  /** The last 0-2 bytes, padded. */
  end(): string {
    const out = this.carry.toString("base64");
    this.carry = EMPTY;
    return out;
  }
}

const BASE64_CHAR = /^[A-Za-z0-9+/\-_]*$/;

/**
 * Bytes of base64 text arriving in pieces: whole 4-character groups are decoded as they come,
 * 0-3 characters wait for the next piece. Padding may only end the text; any character outside
 * the alphabet (standard or URL-safe) is an error, as a stream cannot be taken back.
 */
export class Base64Decoder {
  private carry = "";
  /** Once padding began: how many characters of the last group (with its "=") came so far. */
  private padded: number | undefined;

  push(text: string): Buffer {
    if (!text) return EMPTY;
    if (this.padded !== undefined) {
      // A chunk may split "==".
      if (!/^=+$/.test(text) || (this.padded += text.length) > 4) throw new Error("base64: data after the padding");
      return EMPTY;
    }
    const s = this.carry + text;
    const pad = s.indexOf("=");
    const body = pad < 0 ? s : s.slice(0, pad);
    if (!BASE64_CHAR.test(body)) throw new Error("base64: a character outside the alphabet");
    if (pad >= 0) {
      // Padding: "=" or "==" after 2 or 3 characters of the last group, nothing after it.
      const rest = s.length - pad;
      if (!/^=+$/.test(s.slice(pad)) || body.length % 4 < 2 || (body.length % 4) + rest > 4)
        throw new Error("base64: misplaced padding");
      this.padded = (body.length % 4) + rest;
      this.carry = "";
      return Buffer.from(body, "base64");
    }
    const whole = s.length - (s.length % 4);
    this.carry = s.slice(whole);
    return whole ? Buffer.from(s.slice(0, whole), "base64") : EMPTY;
  }

  /** The last 2-3 characters of unpadded text (one character alone is not base64). */
  end(): Buffer {
    const s = this.carry;
    this.carry = "";
    if (s.length === 1) throw new Error("base64: truncated (one character left over)");
    return s ? Buffer.from(s, "base64") : EMPTY;
  }
}

/** What precedes the base64 of a raw BlobDocument, as JSON.stringify writes it. */
export const rawDocumentPrefix = (contentType: string): string =>
  `{"raw":{"contentType":${JSON.stringify(contentType)},"data":"`;
export const RAW_DOCUMENT_SUFFIX = '"}}';

/** Largest raw document of at most `maxBytes` bytes under `contentType`. */
export const rawDocumentLimit = (contentType: string, maxBytes: number): number =>
  Buffer.byteLength(rawDocumentPrefix(contentType)) + 4 * Math.ceil(maxBytes / 3) + RAW_DOCUMENT_SUFFIX.length;

/** The raw BlobDocument of a byte stream, in pieces; byte-for-byte what JSON.stringify({raw}) would give. */
export async function* rawDocument(
  contentType: string,
  bytes: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Buffer> {
  yield Buffer.from(rawDocumentPrefix(contentType), "utf8");
  const enc = new Base64Encoder();
  for await (const chunk of bytes) {
    const text = enc.push(chunk);
    if (text) yield Buffer.from(text, "latin1");
  }
  yield Buffer.from(enc.end() + RAW_DOCUMENT_SUFFIX, "latin1");
}

// The prefix scanner: each step is the offset after its token, "more" when the bytes end inside
// it, "other" when the document has another shape.
type Step = number | "more" | "other";

const skipSpace = (b: Buffer, i: number): number => {
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  return i;
};

function literal(b: Buffer, i: number, lit: string): Step {
  for (let k = 0; k < lit.length; k++) {
    if (i + k >= b.length) return "more";
    if (b[i + k] !== lit.charCodeAt(k)) return "other";
  }
  return i + lit.length;
}

function jsonString(b: Buffer, i: number): Step {
  if (i >= b.length) return "more";
  if (b[i] !== 0x22) return "other";
  for (let j = i + 1; j < b.length; j++) {
    if (b[j] === 0x5c) j++;
    else if (b[j] === 0x22) return j + 1;
    else if (b[j]! < 0x20) return "other";
  }
  return "more";
}

const PREFIX_TOKENS = ["{", '"raw"', ":", "{", '"contentType"', ":", "", ",", '"data"', ":", '"'];

/**
 * Where the base64 of a raw document starts and its content type, from the document's first
 * bytes: "more" when they end inside the prefix, "other" for any other shape (another form, keys
 * in another order, a content type that is not a non-empty string).
 */
export function parseRawPrefix(head: Buffer): { contentType: string; dataStart: number } | "more" | "other" {
  let i: Step = 0;
  let contentType: [number, number] | undefined;
  for (const token of PREFIX_TOKENS) {
    i = skipSpace(head, i);
    const start: number = i;
    i = token ? literal(head, i, token) : jsonString(head, i);
    if (typeof i !== "number") return i;
    if (!token) contentType = [start, i];
  }
  try {
    const ct: unknown = JSON.parse(head.toString("utf8", contentType![0], contentType![1]));
    return typeof ct === "string" && ct ? { contentType: ct, dataStart: i } : "other";
  } catch {
    return "other";
  }
}

export type OpenedDocument =
  { kind: "raw"; contentType: string; bytes: AsyncGenerator<Buffer> } | { kind: "other"; whole(): Promise<Buffer> };

/** Longest prefix looked at: a content type is at most 255 characters, even escaped well under this. */
const MAX_PREFIX = 4096;

/**
 * A blob document read as a stream: a raw document whose `data` comes last yields its bytes as they
 * are decoded (an error, not a fallback, if it turns out malformed after its prefix); any other
 * document is read whole.
 */
export async function openRawDocument(source: AsyncIterable<Uint8Array>): Promise<OpenedDocument> {
  const it = source[Symbol.asyncIterator]();
  let head: Buffer = EMPTY;
  for (;;) {
    const p = parseRawPrefix(head.length > MAX_PREFIX ? head.subarray(0, MAX_PREFIX) : head);
    if (typeof p === "object")
      return { kind: "raw", contentType: p.contentType, bytes: rawBytes(head.subarray(p.dataStart), it) };
    if (p === "other" || head.length >= MAX_PREFIX) return { kind: "other", whole: () => rest(head, it) };
    const next = await it.next();
    if (next.done) return { kind: "other", whole: async () => head };
    head = head.length ? Buffer.concat([head, asBuffer(next.value)]) : asBuffer(next.value);
  }
}

async function rest(head: Buffer, it: AsyncIterator<Uint8Array>): Promise<Buffer> {
  const chunks = [head];
  for (let n = await it.next(); !n.done; n = await it.next()) chunks.push(asBuffer(n.value));
  return Buffer.concat(chunks);
}

/** The decoded bytes after a raw document's prefix; the document must end with `"}}` (spaces aside). */
async function* rawBytes(first: Buffer, it: AsyncIterator<Uint8Array>): AsyncGenerator<Buffer> {
  const dec = new Base64Decoder();
  let tail: string | undefined;
  let chunk: Buffer | undefined = first;
  try {
    for (;;) {
      if (!chunk) {
        const n = await it.next();
        if (n.done) break;
        chunk = asBuffer(n.value);
      }
      if (tail !== undefined) {
        tail += chunk.toString("latin1");
        if (tail.length > 64) throw new Error("raw document: data after its end");
      } else {
        // Base64 has no '"': the first one ends the data (JSON writers do not escape base64).
        const q = chunk.indexOf(0x22);
        const out = dec.push((q < 0 ? chunk : chunk.subarray(0, q)).toString("latin1"));
        if (out.length) yield out;
        if (q >= 0) tail = chunk.toString("latin1", q + 1);
      }
      chunk = undefined;
    }
    if (tail === undefined) throw new Error("raw document: it ends inside its data");
    if (!/^\s*\}\s*\}\s*$/.test(tail)) throw new Error("raw document: data is not its last field");
    const last = dec.end();
    if (last.length) yield last;
  } finally {
    // Closes the source (a file or an object download) when the reader stops early.
    await it.return?.();
  }
}
