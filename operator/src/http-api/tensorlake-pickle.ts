// The two pickles a Tensorlake ApplicationManifest carries when the runtime reported none: the
// entrypoint's inputs (a list of EntryPointInputManifest) and its output type hint. Tensorlake's
// client only unpickles them, so a few protocol-2 opcodes are enough and no Python is needed here.

const OP = {
  PROTO: 0x80,
  GLOBAL: 0x63, // c module\nname\n
  EMPTY_LIST: 0x5d,
  EMPTY_DICT: 0x7d,
  EMPTY_TUPLE: 0x29,
  MARK: 0x28,
  APPENDS: 0x65,
  SETITEMS: 0x75,
  NEWOBJ: 0x81,
  BUILD: 0x62,
  REDUCE: 0x52,
  TUPLE1: 0x85,
  BINUNICODE: 0x58,
  NONE: 0x4e,
  STOP: 0x2e,
} as const;

const INPUT_MANIFEST = "tensorlake.applications.remote.manifests.application\nEntryPointInputManifest\n";

class Writer {
  private readonly parts: Buffer[] = [];
  op(...codes: number[]): this {
    this.parts.push(Buffer.from(codes));
    return this;
  }
  global(moduleAndName: string): this {
    return this.op(OP.GLOBAL).raw(Buffer.from(moduleAndName, "utf8"));
  }
  str(s: string): this {
    const b = Buffer.from(s, "utf8");
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return this.op(OP.BINUNICODE).raw(len).raw(b);
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  done(): Buffer {
    return Buffer.concat([Buffer.from([OP.PROTO, 2]), ...this.parts, Buffer.from([OP.STOP])]);
  }
}

const anyHint = (w: Writer) => w.global("typing\nAny\n");

/** pickle.dumps(typing.Any, protocol=2), base64: the output type hint of an untyped entrypoint. */
export function anyTypeHintPickle(): Buffer {
  const w = new Writer();
  anyHint(w);
  return w.done();
}

/**
 * pickle of `[EntryPointInputManifest(arg_name=n, type_hint=typing.Any) for n in names]`, built as
 * pydantic pickles its models: NEWOBJ, then BUILD with {__dict__, __pydantic_fields_set__, ...}.
 */
export function inputManifestsPickle(names: readonly string[]): Buffer {
  const w = new Writer().op(OP.EMPTY_LIST);
  if (names.length) {
    w.op(OP.MARK);
    for (const name of names) {
      w.global(INPUT_MANIFEST).op(OP.EMPTY_TUPLE, OP.NEWOBJ);
      w.op(OP.EMPTY_DICT, OP.MARK);
      w.str("__dict__").op(OP.EMPTY_DICT, OP.MARK).str("arg_name").str(name).str("type_hint");
      anyHint(w).op(OP.SETITEMS);
      // A set has no protocol-2 opcode: builtins.set(["arg_name", "type_hint"]).
      w.str("__pydantic_fields_set__").global("builtins\nset\n");
      w.op(OP.EMPTY_LIST, OP.MARK).str("arg_name").str("type_hint").op(OP.APPENDS, OP.TUPLE1, OP.REDUCE);
      w.str("__pydantic_extra__").op(OP.NONE).str("__pydantic_private__").op(OP.NONE);
      w.op(OP.SETITEMS, OP.BUILD);
    }
    w.op(OP.APPENDS);
  }
  return w.done();
}

/** Python's base64.encodebytes layout (76-character lines, each ending in a newline), as Tensorlake writes it. */
export function encodeBytesB64(b: Buffer): string {
  const s = b.toString("base64");
  let out = "";
  for (let i = 0; i < s.length; i += 76) out += `${s.slice(i, i + 76)}\n`;
  return out;
}
