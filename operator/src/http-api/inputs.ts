// A request's inputs from the HTTP body: JSON is the first positional argument; multipart carries
// several (a part "args": JSON list, a part "kwargs": JSON object, any other part: a keyword
// argument, JSON if it parses, else the text). Pickle is never accepted here.
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

export interface Inputs {
  args: unknown[];
  kwargs: Record<string, unknown>;
}

/** Marker object the multipart parser returns, so the handler knows the body was a form. */
export class MultipartBody {
  constructor(readonly form: FormData) {}
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export async function parseInputs(body: unknown): Promise<Inputs> {
  if (body === undefined) return { args: [], kwargs: {} };
  if (!(body instanceof MultipartBody)) {
    const where = findPickle(body);
    if (where) throw new InputError(`${where}: pickled values are not accepted over HTTP; send JSON`);
    return { args: [body], kwargs: {} };
  }
  const out: Inputs = { args: [], kwargs: {} };
  for (const [name, part] of body.form.entries()) {
    const text = typeof part === "string" ? part : await filePartText(name, part);
    addPart(out, name, partValue(name, text));
  }
  checkInputs(out);
  return out;
}

async function filePartText(name: string, part: Exclude<FormDataEntryValue, string>): Promise<string> {
  const type = part.type.split(";")[0]?.trim() ?? "";
  if (type === "application/python-pickle")
    throw new InputError(`part ${name}: pickled values are not accepted over HTTP; send JSON`, 415);
  if (type !== "application/json" && !type.startsWith("text/"))
    throw new InputError(`part ${name}: content type ${type || "(none)"} is not supported; send application/json`, 415);
  return part.text();
}

/** JSON if it parses; a keyword argument may also be plain text, args and kwargs may not. */
function partValue(name: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
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
    Object.assign(out.kwargs, value);
  } else out.kwargs[name] = value;
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

export type StoredValue = { value: unknown } | { blob: string };

/** Inline when small, else a blob document ({value}) under the request's prefix. */
export async function storeValue(
  v: unknown,
  ref: () => string,
  put: (ref: string, data: Uint8Array) => Promise<number>,
): Promise<StoredValue> {
  const doc = Buffer.from(JSON.stringify({ value: v }));
  if (doc.length <= INLINE_VALUE_LIMIT_BYTES) return { value: v };
  const r = ref();
  await put(r, doc);
  return { blob: r };
}
