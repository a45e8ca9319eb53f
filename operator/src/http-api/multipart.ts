// multipart/form-data as a stream of parts (RFC 7578), so that a file part can go to the blob store
// while it arrives instead of the whole form being held in memory. Dicer (@fastify/busboy) finds
// the parts; their headers are read as undici's FormData read them before: a part is a file when
// its Content-Disposition has a filename (even ""), a file's type is its Content-Type header
// lowercased ("text/plain" when absent, "" when not printable ASCII), and names are UTF-8.
import { finished, type Readable } from "node:stream";
import { Dicer } from "@fastify/busboy";

/** A malformed form (or one over the part limit); the caller answers 400. */
export class MultipartError extends Error {}

/** A form of more parts than the limit. */
export class TooManyPartsError extends MultipartError {}

/** The request body ended before the form did: the client closed the connection. */
export class BodyAbortedError extends Error {}

export interface FormPart {
  name: string;
  /** Present (possibly "") when the part is a file. */
  filename: string | undefined;
  /** A file part's content type as FormData's File.type had it; "" for a plain field. */
  type: string;
  /** The part's bytes: read it to its end (or leave it, and the next part drains it). */
  body: Readable;
}

/** The boundary parameter of a multipart content type, quoted or not. */
export function boundaryOf(contentType: string): string | undefined {
  const m = /;\s*boundary\s*=\s*(?:"([^"]{1,200})"|([^;\s"]{1,200}))/i.exec(contentType);
  return m?.[1] ?? m?.[2];
}

const unquote = (s: string): string => s.replace(/\\(.)/g, "$1");

/**
 * The name and filename of a `form-data` Content-Disposition; undefined when it is another
 * disposition, has no name, or is malformed. `filename*` (RFC 5987) wins over `filename`.
 */
export function parseDisposition(value: string): { name: string; filename: string | undefined } | undefined {
  const head = /^\s*form-data\s*(?=;|$)/i.exec(value);
  if (!head) return undefined;
  const params = new Map<string, string>();
  const param = /;\s*([^\s;=]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^;"]*)))?\s*/y;
  param.lastIndex = head[0].length;
  while (param.lastIndex < value.length) {
    const m = param.exec(value);
    if (!m) return undefined;
    const key = m[1]!.toLowerCase();
    if (!params.has(key) && (m[2] !== undefined || m[3] !== undefined))
      params.set(key, m[2] !== undefined ? unquote(m[2]) : m[3]!.trim());
  }
  const name = params.get("name");
  if (name === undefined) return undefined;
  return { name, filename: extValue(params.get("filename*")) ?? params.get("filename") };
}

/** An RFC 5987 ext-value (`utf-8''%E2%82%AC.txt`), decoded; undefined when absent or not UTF-8. */
function extValue(v: string | undefined): string | undefined {
  const m = v === undefined ? null : /^utf-8'[^']*'(.*)$/i.exec(v);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return undefined;
  }
}

/** File.type of a part's Content-Type header, as undici gave it. */
function fileType(header: string | undefined): string {
  if (header === undefined) return "text/plain";
  const t = header.trim();
  return /^[\x20-\x7e]*$/.test(t) ? t.toLowerCase() : "";
}

// Dicer keeps header values as latin1 strings of the raw bytes.
const utf8Header = (v: string): string => Buffer.from(v, "latin1").toString("utf8");

function partOf(header: Record<string, string[] | undefined>, body: Readable): FormPart {
  const disposition = header["content-disposition"]?.[0];
  const d = disposition === undefined ? undefined : parseDisposition(utf8Header(disposition));
  if (!d) throw new MultipartError("a part without Content-Disposition: form-data and a name");
  const type = header["content-type"]?.[0];
  return { ...d, type: d.filename === undefined ? "" : fileType(type), body };
}

export interface FormLimits {
  /** Most parts in one form (a form of more cannot be valid inputs anyway). */
  maxParts: number;
}

/**
 * The parts of a form, in order, read from `body` as the consumer asks for them: Dicer stops
 * reading the body while a part's bytes wait to be read, so memory stays bounded by the stream
 * buffers. Throws MultipartError for a malformed form and BodyAbortedError when the body breaks
 * off; the body is left unread (not destroyed) when the consumer stops early, so an answer can
 * still be sent.
 */
export async function* formParts(contentType: string, body: Readable, limits: FormLimits): AsyncGenerator<FormPart> {
  const boundary = boundaryOf(contentType);
  if (!boundary) throw new MultipartError("no boundary in the content type");
  // maxHeaderSize is Dicer's too (not in its typings): a part's header block of at most 16 KiB.
  const dicer = new Dicer({ boundary, maxHeaderPairs: 100, maxHeaderSize: 16 * 1024 } as ConstructorParameters<
    typeof Dicer
  >[0]);
  const queue: (FormPart | Error | null)[] = [];
  const open = new Set<Readable>();
  let wake: (() => void) | undefined;
  const push = (x: FormPart | Error | null) => {
    queue.push(x);
    wake?.();
    wake = undefined;
  };
  let failure: Error | undefined;
  const fail = (e: Error) => {
    if (failure) return;
    failure = e;
    // A consumer reading a part learns it too.
    for (const p of open) p.destroy(e);
    push(e);
  };
  let parts = 0;
  dicer.on("part", (part: Readable) => {
    part.on("error", (e: Error) => fail(new MultipartError(e.message)));
    if (++parts > limits.maxParts) {
      part.resume();
      return fail(new TooManyPartsError(`more than ${limits.maxParts} parts`));
    }
    open.add(part);
    part.once("end", () => open.delete(part));
    part.once("header", (h: Record<string, string[] | undefined>) => {
      try {
        push(partOf(h, part));
      } catch (e) {
        part.resume();
        fail(e as Error);
      }
    });
  });
  dicer.on("error", (e: Error) => fail(new MultipartError(e.message)));
  dicer.on("finish", () => push(null));
  const stopWatching = finished(body, (err) => {
    if (err) fail(new BodyAbortedError(err.message));
  });
  body.pipe(dicer);
  try {
    for (;;) {
      while (!queue.length) await new Promise<void>((r) => (wake = r));
      const next = queue.shift()!;
      if (next === null) return;
      if (next instanceof Error) throw next;
      yield next;
      // Whatever the consumer left of this part is drained, so Dicer reaches the next one.
      next.body.resume();
    }
  } finally {
    stopWatching();
    body.unpipe(dicer);
    for (const p of open) p.destroy();
    dicer.removeAllListeners("part");
  }
}
