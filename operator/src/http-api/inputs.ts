// A request's inputs from the HTTP body, in Tensorlake's forms and ours:
// - no body: no arguments; a JSON body: the first positional argument;
// - any other content type: the first positional argument as raw bytes ({raw: {contentType, data}});
// - multipart: parts "0", "1", … are positional (index order), other parts keyword arguments, each
//   by its own content type (JSON → the value, other types → raw); our parts "args" (JSON list) and
//   "kwargs" (JSON object) still work, and a part without a content type is JSON if it parses,
//   else text.
// Pickle is never accepted here.
import { INLINE_VALUE_LIMIT_BYTES, MAX_ARGS } from "../../../protocol/index.js";
import { findPickle } from "./views.js";

export class InputError extends Error {
  constructor(
    message: string,
    readonly statusCode = 400,
  ) {
    super(message);
  }
}

/** Bytes that are not JSON: an HTTP body or form part of another content type. */
export class RawInput {
  constructor(
    readonly contentType: string,
    readonly data: Buffer,
  ) {}
}

const MIME = /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$/;

/** Raw bytes under a content type the FunctionCall can hold (a MIME type of at most 255 characters). */
export function rawInput(contentType: string | undefined, data: Buffer, where: string): RawInput {
  const ct = contentType?.trim() || "application/octet-stream";
  if (ct.length > 255 || !MIME.test(ct))
    throw new InputError(`${where}: content type must be a MIME type (type/subtype) of at most 255 characters`, 415);
  return new RawInput(ct, data);
}

export interface Inputs {
  args: unknown[];
  kwargs: Record<string, unknown>;
}

/** Marker object the multipart parser returns, so the handler knows the body was a form. */
export class MultipartBody {
  constructor(readonly form: FormData) {}
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

export async function parseInputs(body: unknown): Promise<Inputs> {
  if (body === undefined) return { args: [], kwargs: {} };
  if (body instanceof RawInput) return { args: [body], kwargs: {} };
  if (!(body instanceof MultipartBody)) {
    const where = findPickle(body);
    if (where) throw new InputError(`${where}: pickled values are not accepted over HTTP; send JSON`);
    return { args: [body], kwargs: {} };
  }
  const out: Inputs = { args: [], kwargs: {} };
  const positional = new Map<number, unknown>();
  const seen = new Set<string>();
  for (const [name, part] of body.form.entries()) {
    if (seen.has(name)) throw new InputError(`part ${name}: given twice; send each argument once`);
    seen.add(name);
    if (name === "__proto__") throw new InputError("part __proto__: reserved name, not accepted as an argument");
    const value = typeof part === "string" ? textValue(name, part) : await fileValue(name, part);
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

/** A part with a content type (a file part): JSON types are parsed, others stay bytes. */
async function fileValue(name: string, part: Exclude<FormDataEntryValue, string>): Promise<unknown> {
  const type = mediaType(part.type);
  if (type === PICKLE) throw new InputError(`part ${name}: pickled values are not accepted over HTTP; send JSON`, 415);
  if (isJsonType(type))
    return parseJsonBody(utf8(new Uint8Array(await part.arrayBuffer()), `part ${name}`), `part ${name}`, type) ?? null;
  if (name === "args" || name === "kwargs") throw new InputError(`part ${name}: must be JSON`);
  return rawInput(part.type, Buffer.from(await part.arrayBuffer()), `part ${name}`);
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
  const inline: StoredValue =
    v instanceof RawInput ? { raw: { contentType: v.contentType, data: v.data.toString("base64") } } : { value: v };
  const doc = Buffer.from(JSON.stringify(inline));
  if (doc.length <= INLINE_VALUE_LIMIT_BYTES) return inline;
  const r = ref();
  await put(r, doc);
  return { blob: r };
}
