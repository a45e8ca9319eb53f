// The socket boundary: every message from the worker is checked against the protocol's zod
// schemas (protocol/src/worker-messages.ts, PROTOCOL.md §1) before anything acts on it. A bad
// message is described by field and rule, e.g. `result.output: must be a value form
// ({json}|{pickle}|{list}|{raw})`, so the log says what the worker got wrong.
import { z } from "zod";
import {
  fatalMessage,
  functionInfo,
  helloMessage,
  MAX_MESSAGE_DEPTH,
  type FunctionInfo,
  workerToSidecar,
  type WorkerToSidecar,
} from "../../../protocol/index.js";
import type { WorkerMessage } from "./framing.js";

export type Hello = z.infer<typeof helloMessage>;
export type Fatal = z.infer<typeof fatalMessage>;
/** A checked message of the worker, by type. */
export type Msg<T extends WorkerToSidecar["type"]> = Extract<WorkerToSidecar, { type: T }>;

export type Parsed =
  | { kind: "ok"; msg: WorkerToSidecar }
  | { kind: "unknown"; type: string }
  | { kind: "invalid"; type: string; problems: string[] };

const KNOWN: ReadonlySet<string> = new Set(workerToSidecar.options.map((o) => o.shape.type.value));
const MAX_PROBLEMS = 5;

/** `calls[0].args[1]`: how PROTOCOL.md and the Python twin name a field. */
function joinPath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
}

/** Issue → "type.field: rule"; a union's issue is explained by the issues of its branches. */
function describe(prefix: string, issues: readonly z.core.$ZodIssue[], path: readonly PropertyKey[] = []): string[] {
  return issues.flatMap((issue) => {
    const at = [...path, ...issue.path];
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      return issue.errors.flatMap((branch) => describe(prefix, branch, at));
    }
    return [`${prefix}${joinPath(at)}: ${issue.message}`];
  });
}

/** The problems of a failed parse, at most a few, each naming the field and the rule. */
export function problemsOf(type: string, error: z.ZodError): string[] {
  const all = describe(type, error.issues);
  return all.length > MAX_PROBLEMS ? [...all.slice(0, MAX_PROBLEMS), `… ${all.length - MAX_PROBLEMS} more`] : all;
}

/**
 * The first top-level field nested deeper than MAX_MESSAGE_DEPTH, checked without recursion: the
 * schema checks recurse, so a value nested 100000 deep must be refused before them.
 */
export function tooDeep(raw: WorkerMessage): string | undefined {
  for (const [field, value] of Object.entries(raw)) {
    const stack: [unknown, number][] = [[value, 1]];
    while (stack.length > 0) {
      const [v, depth] = stack.pop()!;
      if (typeof v !== "object" || v === null) continue;
      if (depth > MAX_MESSAGE_DEPTH) return field;
      for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push([x, depth + 1]);
    }
  }
  return undefined;
}

const depthProblem = (type: string, field: string) =>
  `${type}.${field}: must be nested at most ${MAX_MESSAGE_DEPTH} levels deep`;

/** A message after the handshake: checked, unknown (ignored by the receiver), or invalid. */
export function parseWorkerMessage(raw: WorkerMessage): Parsed {
  if (!KNOWN.has(raw.type)) return { kind: "unknown", type: raw.type };
  const deep = tooDeep(raw);
  if (deep !== undefined) return { kind: "invalid", type: raw.type, problems: [depthProblem(raw.type, deep)] };
  const r = workerToSidecar.safeParse(raw);
  return r.success
    ? { kind: "ok", msg: r.data }
    : { kind: "invalid", type: raw.type, problems: problemsOf(raw.type, r.error) };
}

const helloEnvelope = helloMessage.extend({ functions: z.array(z.unknown()) });

/**
 * `hello`, leniently in its function table: an entry that breaks the rules is left out (and
 * named in `problems`) rather than losing the whole pod; a bad envelope gives no hello.
 */
export function parseHello(raw: WorkerMessage): { hello?: Hello; problems: string[] } {
  const deep = tooDeep(raw);
  if (deep !== undefined) return { problems: [depthProblem("hello", deep)] };
  const r = helloEnvelope.safeParse(raw);
  if (!r.success) return { problems: problemsOf("hello", r.error) };
  const functions: FunctionInfo[] = [];
  const problems: string[] = [];
  r.data.functions.forEach((f, i) => {
    const p = functionInfo.safeParse(f);
    if (p.success) functions.push(p.data);
    else problems.push(...problemsOf(`hello.functions[${i}]`, p.error));
  });
  return { hello: { ...r.data, functions }, problems };
}

/** `fatal`; a broken one still means the code did not load, so it is reported with what is readable. */
export function parseFatal(raw: WorkerMessage): { fatal: Fatal; problems: string[] } {
  const deep = tooDeep(raw);
  const r = deep === undefined ? fatalMessage.safeParse(raw) : fatalMessage.safeParse({});
  if (r.success) return { fatal: r.data, problems: [] };
  const e = (typeof raw.error === "object" && raw.error !== null ? raw.error : {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === "string" ? v : undefined);
  const fatal: Fatal = {
    type: "fatal",
    protocol: typeof raw.protocol === "number" ? raw.protocol : 0,
    error: {
      type: text(e.type) || "Error",
      message: text(e.message) ?? "the worker could not load the code",
      ...(text(e.module) ? { module: text(e.module) } : {}),
      ...(text(e.traceback) ? { traceback: text(e.traceback) } : {}),
    },
  };
  return { fatal, problems: deep !== undefined ? [depthProblem("fatal", deep)] : problemsOf("fatal", r.error) };
}
