// A request's inputs from the HTTP body, in Tensorlake's forms and ours:
// - no body: no arguments; a JSON body: the first positional argument;
// - any other content type: the first positional argument as raw bytes ({raw: {contentType, data}});
// - multipart: parts "0", "1", … are positional (index order), other parts keyword arguments, each
//   by its own content type (JSON → the value, other types → raw); our parts "args" (JSON list) and
//   "kwargs" (JSON object) still work, and a part without a content type is JSON if it parses,
//   else text.
// Pickle is never accepted here.
// Raw bodies and file parts (Files) are read as streams: up to the inline limit they stay in
// memory; a larger one goes to the blob store while it arrives (`FileSink`) and the argument is its
// blob. Plain fields and JSON parts stay small and buffered, under the body limit together.
import type { Readable } from "node:stream";
import { INLINE_VALUE_LIMIT_BYTES, MAX_ARGS } from "../../../protocol/index.js";
import { BodyAbortedError, type FormPart, MultipartError, TooManyPartsError, formParts } from "./multipart.js";
import { findPickle } from "./views.js";

/** Default body limit: 10 MiB (TRELLIS_HTTP_BODY_LIMIT_BYTES). Inputs over 64 KiB go to the blob store. */
export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024;
/** Default limit of one File (a raw body or a file part), streamed to the blob store: 5 GiB (TRELLIS_HTTP_MAX_FILE_BYTES). */
export const DEFAULT_MAX_FILE_BYTES = 5 * 1024 * 1024 * 1024;
/** Most parts of one form: valid inputs have at most 64 positional and 64 keyword arguments. */
export const MAX_FORM_PARTS = 256;

export class InputError extends Error {
  constructor(
    message: string,
    readonly statusCode = 400,
    readonly code = "invalid_input",
  ) {
    super(message);
  }
}

/** 413 body_too_large, naming the limit that was passed. */
export const tooLarge = (where: string, limit: number, what = ""): InputError =>
  new InputError(`${where}: larger than the limit of ${limit} bytes${what}`, 413, "body_too_large");

/** Bytes that are not JSON: an HTTP body or form part of another content type. */
export class RawInput {
  constructor(
    readonly contentType: string,
    readonly data: Buffer,
  ) {}
}

const MIME = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$/;

/** A raw input too large to be inline, already in the blob store as a {raw} document. */
export class StoredRaw {
  constructor(
    readonly ref: string,
    readonly contentType: string,
    readonly size: number,
    /** sha256 (hex) of the bytes, when asked for (an Idempotency-Key compares inputs by it). */
    readonly sha256?: string,
  ) {}
}

/** A content type the FunctionCall can hold (a MIME type of at most 255 characters); none is octet-stream. */
export function rawType(contentType: string | undefined, where: string): string {
  const ct = contentType?.trim() || "application/octet-stream";
  if (ct.length > 255 || !MIME.test(ct))
    throw new InputError(`${where}: content type must be a MIME type (type/subtype) of at most 255 characters`, 415);
  return ct;
}

/** Raw bytes under a content type the FunctionCall can hold. */
export function rawInput(contentType: string | undefined, data: Buffer, where: string): RawInput {
  return new RawInput(rawType(contentType, where), data);
}

/** A raw body not read yet (its content type checked): the invoke route streams it. */
export class RawBody {
  constructor(
    readonly contentType: string,
    readonly stream: Readable,
  ) {}
}

export interface Inputs {
  args: unknown[];
  kwargs: Record<string, unknown>;
}

/** A multipart body not read yet (its boundary checked): the route reads its parts as they arrive. */
export class MultipartBody {
  constructor(
    readonly contentType: string,
    readonly stream: Readable,
  ) {}
}

/**
 * Stores a raw input too large to be inline: `head` is what was read, `rest` the remaining chunks.
 * Throws a 413 past the file limit and leaves nothing in the store on any failure.
 */
export type FileSink = (
  where: string,
  contentType: string,
  head: Buffer,
  rest: AsyncIterator<Buffer>,
) => Promise<StoredRaw>;

export interface InputLimits {
  /** Bytes of a form's fields, JSON parts and inline files together (TRELLIS_HTTP_BODY_LIMIT_BYTES). */
  bodyLimit: number;
  /** Bytes of one File, a raw body or a file part (TRELLIS_HTTP_MAX_FILE_BYTES). */
  maxFileBytes: number;
}

/** How streamed bodies are read: the limits, and where large Files go. */
export interface StreamedInputs {
  limits: InputLimits;
  files: FileSink;
}

/**
 * The chunks of a body; one that breaks off (the client went away) is a BodyAbortedError. Stopping
 * early leaves the stream alive: destroying a request would leave no connection to answer on.
 */
async function* chunksOf(stream: Readable): AsyncGenerator<Buffer> {
  try {
    for await (const c of stream.iterator({ destroyOnReturn: false }))
      yield Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
  } catch (e) {
    if (e instanceof MultipartError || e instanceof BodyAbortedError) throw e;
    throw new BodyAbortedError((e as Error).message);
  }
}

/** Chunks until more than `max` bytes came (or the end): the head, and whether that was all. */
async function readHead(it: AsyncIterator<Buffer>, max: number): Promise<{ head: Buffer; ended: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  while (size <= max) {
    const n = await it.next();
    if (n.done) return { head: Buffer.concat(chunks), ended: true };
    chunks.push(n.value);
    size += n.value.length;
  }
  return { head: Buffer.concat(chunks), ended: false };
}

/** The stream errors as answers: a malformed form is 400, a body cut off is 400 (nobody reads it). */
function streamError(e: unknown): unknown {
  if (e instanceof TooManyPartsError)
    return new InputError(
      `body: more than ${MAX_FORM_PARTS} parts; a form holds at most ${MAX_ARGS} positional and ${MAX_ARGS} keyword arguments`,
    );
  if (e instanceof MultipartError) return new InputError(`body: malformed multipart/form-data (${e.message})`);
  if (e instanceof BodyAbortedError)
    return new InputError(`body: the connection closed before the whole body arrived (${e.message})`);
  return e;
}

/** The parts of a form, in order; errors of the form or the connection are InputErrors. */
async function* partsOf(body: MultipartBody): AsyncGenerator<FormPart> {
  try {
    yield* formParts(body.contentType, body.stream, { maxParts: MAX_FORM_PARTS });
  } catch (e) {
    throw streamError(e);
  }
}

/** Bytes held in memory for one request (fields, JSON parts, small files), under the body limit. */
class Budget {
  private used = 0;
  constructor(private readonly limit: number) {}

  spend(n: number): void {
    this.used += n;
    if (this.used > this.limit)
      throw tooLarge("body", this.limit, " (form fields, JSON parts and files of at most 64 KiB, together)");
  }

  /** A part's whole body, counted as it arrives. */
  async read(part: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    try {
      for await (const c of chunksOf(part)) {
        this.spend(c.length);
        chunks.push(c);
      }
    } catch (e) {
      throw streamError(e);
    }
    return Buffer.concat(chunks);
  }
}

/**
 * A form read whole into FormData, as the deploy route wants it (a code zip and a manifest): at
 * most `limit` bytes of parts in all.
 */
export async function readForm(body: MultipartBody, limit: number): Promise<FormData> {
  const form = new FormData();
  const budget = new Budget(limit);
  for await (const part of partsOf(body)) {
    const bytes = await budget.read(part.body);
    if (part.filename === undefined) form.append(part.name, bytes.toString("utf8"));
    else form.append(part.name, new File([new Uint8Array(bytes)], part.filename, { type: part.type }));
  }
  return form;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const POSITIONAL = /^(0|[1-9][0-9]{0,5})$/;
const PICKLE = "application/python-pickle";

export const mediaType = (ct: string | undefined): string => (ct ?? "").split(";")[0]!.trim().toLowerCase();
export const isJsonType = (ct: string | undefined): boolean => {
  const t = mediaType(ct);
  return t === "application/json" || t.endsWith("+json");
};

/** Deepest JSON nesting accepted: deeper values are refused before parsing (they only exhaust stacks). */
export const MAX_JSON_DEPTH = 100;

/** Refuses JSON text nested deeper than MAX_JSON_DEPTH (brackets inside strings do not count). */
export function checkDepth(text: string, where: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) throw new InputError(`${where}: JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

class ProtoKey extends Error {}

/** JSON.parse that refuses `__proto__` keys (kwargs objects are plain objects) and deep nesting. */
function parseStrictJson(text: string, where: string): unknown {
  checkDepth(text, where);
  return JSON.parse(text, (k, v: unknown) => {
    if (k === "__proto__") throw new ProtoKey(`${where}: the key __proto__ is not allowed`);
    return v;
  }) as unknown;
}

/** UTF-8 text of a body or part: invalid bytes are refused, not replaced. */
export function utf8(data: Uint8Array, where: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(data);
  } catch {
    throw new InputError(`${where}: not valid UTF-8`);
  }
}

/** A JSON body: empty means no arguments. */
export function parseJsonBody(text: string, where: string, type: string | undefined): unknown {
  if (!text.trim()) return undefined;
  try {
    return parseStrictJson(text, where);
  } catch (e) {
    if (e instanceof InputError) throw e;
    if (e instanceof ProtoKey) throw new InputError(e.message);
    throw new InputError(`${where}: content type ${mediaType(type)} but not JSON (${(e as Error).message})`);
  }
}

/**
 * The inputs of a body. A raw or multipart body (RawBody, MultipartBody) is read here, as a
 * stream: `streamed` says how (limits, and where large Files go).
 */
export async function parseInputs(body: unknown, streamed?: StreamedInputs): Promise<Inputs> {
  if (body === undefined) return { args: [], kwargs: {} };
  if (body instanceof RawInput) return { args: [body], kwargs: {} };
  if (body instanceof RawBody) {
    const raw = await readRaw("body", body.contentType, body.stream, need(streamed));
    return { args: raw === undefined ? [] : [raw], kwargs: {} };
  }
  if (!(body instanceof MultipartBody)) {
    const where = findPickle(body);
    if (where) throw new InputError(`${where}: pickled values are not accepted over HTTP; send JSON`);
    return { args: [body], kwargs: {} };
  }
  return parseForm(body, need(streamed));
}

/** A form's parts as arguments; rules are checked part by part as the form arrives, so a refusal comes before later Files are stored. */
async function parseForm(body: MultipartBody, io: StreamedInputs): Promise<Inputs> {
  const budget = new Budget(io.limits.bodyLimit);
  const out: Inputs = { args: [], kwargs: {} };
  const positional = new Map<number, unknown>();
  const seen = new Set<string>();
  for await (const part of partsOf(body)) {
    const name = part.name;
    if (seen.has(name)) throw new InputError(`part ${name}: given twice; send each argument once`);
    seen.add(name);
    if (name === "__proto__") throw new InputError("part __proto__: reserved name, not accepted as an argument");
    const value =
      part.filename === undefined
        ? textValue(name, (await budget.read(part.body)).toString("utf8"))
        : await fileValue(part, budget, io);
    if (POSITIONAL.test(name)) positional.set(Number(name), value);
    else addPart(out, name, value);
  }
  if (positional.size) {
    if (out.args.length) throw new InputError("part 0: numbered parts cannot be combined with a part args");
    for (let i = 0; i < positional.size; i++)
      if (!positional.has(i))
        throw new InputError(`part ${i}: missing; positional parts are numbered 0, 1, … in order`);
    out.args = [...positional.keys()].sort((a, b) => a - b).map((i) => positional.get(i));
  }
  checkInputs(out);
  return out;
}

function need(streamed: StreamedInputs | undefined): StreamedInputs {
  if (!streamed) throw new Error("a streamed body needs limits and a file sink");
  return streamed;
}

/**
 * A raw body or file part: in memory (RawInput) up to the inline limit, else streamed to the blob
 * store (StoredRaw); undefined when empty.
 */
async function readRaw(
  where: string,
  contentType: string,
  stream: Readable,
  io: StreamedInputs,
  budget?: Budget,
): Promise<RawInput | StoredRaw | undefined> {
  const it = chunksOf(stream);
  try {
    const { head, ended } = await readHead(it, INLINE_VALUE_LIMIT_BYTES);
    if (head.length > io.limits.maxFileBytes) throw tooLarge(where, io.limits.maxFileBytes, " for a file");
    if (ended) {
      budget?.spend(head.length);
      return head.length || budget ? new RawInput(contentType, head) : undefined;
    }
    return await io.files(where, contentType, head, it);
  } catch (e) {
    throw streamError(e);
  } finally {
    await it.return(undefined);
  }
}

/** A part with a filename (a file part): JSON types are parsed, others are Files. */
async function fileValue(part: FormPart, budget: Budget, io: StreamedInputs): Promise<unknown> {
  const where = `part ${part.name}`;
  const type = mediaType(part.type);
  if (type === PICKLE) throw new InputError(`${where}: pickled values are not accepted over HTTP; send JSON`, 415);
  if (isJsonType(type)) return parseJsonBody(utf8(await budget.read(part.body), where), where, type) ?? null;
  if (part.name === "args" || part.name === "kwargs") throw new InputError(`${where}: must be JSON`);
  return readRaw(where, rawType(part.type, where), part.body, io, budget);
}

/** A plain form field: JSON if it parses; a keyword argument may also be plain text, args and kwargs may not. */
function textValue(name: string, text: string): unknown {
  try {
    return parseStrictJson(text, `part ${name}`);
  } catch (e) {
    if (e instanceof InputError) throw e;
    if (e instanceof ProtoKey) throw new InputError(e.message);
    if (name === "args" || name === "kwargs") throw new InputError(`part ${name}: must be JSON`);
    return text;
  }
}

function addPart(out: Inputs, name: string, value: unknown): void {
  if (name === "args") {
    if (!Array.isArray(value)) throw new InputError("part args: must be a JSON list of positional arguments");
    out.args.push(...(value as unknown[]));
  } else if (name === "kwargs") {
    if (value === null || typeof value !== "object" || Array.isArray(value))
      throw new InputError("part kwargs: must be a JSON object of keyword arguments");
    for (const [k, v] of Object.entries(value)) {
      if (k in out.kwargs) throw new InputError(`kwargs.${k}: given twice (in part kwargs and as a part)`);
      out.kwargs[k] = v;
    }
  } else {
    if (name in out.kwargs) throw new InputError(`part ${name}: given twice (as a part and in part kwargs)`);
    out.kwargs[name] = value;
  }
}

/** Checks on the assembled inputs, whichever parts they came from. */
function checkInputs(out: Inputs): void {
  for (const k of Object.keys(out.kwargs))
    if (!IDENT.test(k)) throw new InputError(`kwargs.${k}: must be a Python identifier`);
  if (out.args.length > MAX_ARGS) throw new InputError(`args: at most ${MAX_ARGS} positional arguments`);
  if (Object.keys(out.kwargs).length > MAX_ARGS) throw new InputError(`kwargs: at most ${MAX_ARGS} keyword arguments`);
  const where = findPickle(out, "input");
  if (where) throw new InputError(`${where}: pickled values are not accepted over HTTP; send JSON`);
}

export type StoredValue = { value: unknown } | { raw: { contentType: string; data: string } } | { blob: string };

/** Inline when small, else a blob document ({value} or {raw}) under the request's prefix. */
export async function storeValue(
  v: unknown,
  ref: () => string,
  put: (ref: string, data: Uint8Array) => Promise<number>,
): Promise<StoredValue> {
  if (v instanceof StoredRaw) return { blob: v.ref };
  const inline: StoredValue =
    v instanceof RawInput ? { raw: { contentType: v.contentType, data: v.data.toString("base64") } } : { value: v };
  const doc = Buffer.from(JSON.stringify(inline));
  if (doc.length <= INLINE_VALUE_LIMIT_BYTES) return inline;
  const r = ref();
  await put(r, doc);
  return { blob: r };
}
