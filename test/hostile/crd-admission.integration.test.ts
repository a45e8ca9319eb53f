// The hostile-input corpus of CRD admission (test/hostile/crd-admission.json), against the real
// API server: every denied case is a 4xx whose message names the field and the rule, never a 5xx
// and never a hang; a denied create stores nothing and a denied update leaves the accepted object
// as it was; at-limit cases are stored as sent.
import { readFileSync } from "node:fs";
import https from "node:https";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCrds, createNamespace, deleteNamespace, kubeConfig } from "../support/kube.js";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };
type Kind = "Application" | "FunctionCall";

interface Case {
  name: string;
  kind: Kind;
  op: "create" | "update" | "status";
  patch: Obj;
  expect: "denied" | "accepted" | "unchanged";
  message?: string;
  note?: string;
}

const CORPUS = fileURLToPath(new URL("./crd-admission.json", import.meta.url));
const corpus = JSON.parse(readFileSync(CORPUS, "utf8")) as {
  bases: Record<Kind, Obj>;
  statusBase: Record<Kind, Obj>;
  cases: Case[];
};
const PLURAL: Record<Kind, string> = { Application: "applications", FunctionCall: "functioncalls" };
const REQUEST_TIMEOUT_MS = 30_000;

// -- generators and merge patches -----------------------------------------------------------------

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const withIndex = (v: Json, i: number): Json =>
  typeof v === "string"
    ? v.replaceAll("{i}", String(i))
    : Array.isArray(v)
      ? v.map((x) => withIndex(x, i))
      : isObj(v)
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withIndex(x, i)]))
        : v;

/** Expands the corpus' generators; `$deep` becomes a placeholder that `serialize` writes out. */
function expand(v: Json): Json {
  if (Array.isArray(v)) return v.map(expand);
  if (!isObj(v)) return v;
  const s = v.$string as { length: number; char?: string; prefix?: string } | undefined;
  if (s) return (s.prefix ?? "") + (s.char ?? "a").repeat(s.length - (s.prefix ?? "").length);
  const a = v.$array as { count: number; item: Json } | undefined;
  if (a) return Array.from({ length: a.count }, (_, i) => expand(withIndex(a.item, i)));
  const o = v.$object as { count: number; key?: string; value: Json } | undefined;
  if (o) return Object.fromEntries(Array.from({ length: o.count }, (_, i) => [`${o.key ?? "k"}${i}`, expand(o.value)]));
  if (typeof v.$deep === "number") return `@@deep:${v.$deep}@@`;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expand(x)]));
}

/** JSON text; a `$deep` placeholder becomes a value nested that deep (too deep for JSON.stringify). */
const serialize = (v: Json): string =>
  JSON.stringify(v).replace(/"@@deep:(\d+)@@"/g, (_, d: string) => `${'{"a":'.repeat(+d)}1${"}".repeat(+d)}`);

/** RFC 7386 JSON merge patch: null removes a field, objects merge, anything else replaces. */
function merge(target: Json, patch: Json): Json {
  if (!isObj(patch)) return patch;
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = merge(out[k] ?? null, v);
  }
  return out;
}

// -- the API server, raw (status codes and Status messages as they are) ---------------------------

interface Answer {
  status: number;
  body: string;
}

async function request(method: string, path: string, body?: string): Promise<Answer> {
  const kc = kubeConfig();
  const server = new URL(kc.getCurrentCluster()!.server);
  const opts: https.RequestOptions = {
    method,
    hostname: server.hostname,
    port: server.port,
    path,
    headers: body !== undefined ? { "content-type": "application/json" } : {},
  };
  await kc.applyToHTTPSOptions(opts);
  return new Promise((resolve, reject) => {
    const req = https.request(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`${method} ${path}: no answer in 30 s (a hang)`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** The Status message of a refusal (the whole body when it is not a Status). */
function messageOf(a: Answer): string {
  try {
    const s = JSON.parse(a.body) as { message?: string };
    return s.message ?? a.body;
  } catch {
    return a.body;
  }
}

let ns = "";
const collection = (kind: Kind) => `/apis/trellis.dev/v1alpha1/namespaces/${ns}/${PLURAL[kind]}`;
const get = (kind: Kind, name: string) => request("GET", `${collection(kind)}/${name}`);
const stored = async (kind: Kind, name: string): Promise<Obj> => {
  const a = await get(kind, name);
  expect(a.status, a.body).toBe(200);
  return JSON.parse(a.body) as Obj;
};
const specAndStatus = (o: Obj) => ({
  resourceVersion: (o.metadata as Obj).resourceVersion,
  spec: o.spec,
  status: o.status ?? null,
});

function baseOf(kind: Kind, name: string): Obj {
  const b = structuredClone(corpus.bases[kind]);
  return merge(b, { metadata: { name } }) as Obj;
}

/** Creates the base object (with a valid status when asked) and returns it as stored. */
async function accepted(kind: Kind, name: string, withStatus: boolean): Promise<Obj> {
  const a = await request("POST", collection(kind), serialize(baseOf(kind, name)));
  expect(a.status, a.body).toBe(201);
  if (!withStatus) return JSON.parse(a.body) as Obj;
  const obj = merge(JSON.parse(a.body) as Json, { status: corpus.statusBase[kind] }) as Obj;
  const s = await request("PUT", `${collection(kind)}/${name}/status`, JSON.stringify(obj));
  expect(s.status, s.body).toBe(200);
  return JSON.parse(s.body) as Obj;
}

const objectNameOf = (o: Json): string => ((o as Obj).metadata as Obj).name as string;

async function runCase(c: Case, index: number): Promise<void> {
  const name = `h${index}`;
  const patch = expand(c.patch);
  let answer: Answer;
  let before: Obj | undefined;
  let target: string;
  if (c.op === "create") {
    const obj = merge(baseOf(c.kind, name), patch);
    target = objectNameOf(obj);
    answer = await request("POST", collection(c.kind), serialize(obj));
  } else {
    before = await accepted(c.kind, name, c.op === "status");
    target = name;
    const path = `${collection(c.kind)}/${name}${c.op === "status" ? "/status" : ""}`;
    answer = await request("PUT", path, serialize(merge(before, patch)));
  }
  // Never a 5xx: a refusal is the client's to fix.
  expect(answer.status, answer.body).toBeLessThan(500);
  if (c.expect === "denied") {
    expect(answer.status, answer.body).toBeGreaterThanOrEqual(400);
    const message = messageOf(answer);
    expect(message, message).toMatch(new RegExp(c.message!));
    if (before) expect(specAndStatus(await stored(c.kind, target))).toEqual(specAndStatus(before));
    else if (target.length <= 253) expect((await get(c.kind, target)).status).toBe(404);
    return;
  }
  expect(answer.status, answer.body).toBeLessThan(300);
  const now = await stored(c.kind, target);
  if (c.expect === "unchanged") {
    expect({ spec: now.spec, status: now.status ?? null }).toEqual({
      spec: before!.spec,
      status: before!.status ?? null,
    });
  } else {
    expect(now.spec).toMatchObject((merge(baseOf(c.kind, name), patch) as Obj).spec as Obj);
  }
}

// -- the corpus -----------------------------------------------------------------------------------

/** Accepted before every hostile input; compared after all of them. */
const sentinels: [Kind, string][] = [
  ["FunctionCall", "sentinel"],
  ["Application", "sentinel"],
];
const sentinelState = new Map<string, unknown>();

beforeAll(async () => {
  await applyCrds();
  ns = await createNamespace("hostile-crd");
  for (const [kind, name] of sentinels) {
    sentinelState.set(kind, specAndStatus(await accepted(kind, name, true)));
  }
});
afterAll(async () => {
  await deleteNamespace(ns);
});

describe("hostile-input corpus: test/hostile/crd-admission.json", () => {
  it("holds named, distinct cases, each with an expectation and, when denied, a message rule", () => {
    expect(corpus.cases.length).toBeGreaterThanOrEqual(30);
    const names = corpus.cases.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of corpus.cases) {
      expect(["Application", "FunctionCall"], c.name).toContain(c.kind);
      expect(["create", "update", "status"], c.name).toContain(c.op);
      if (c.expect === "denied") expect(() => new RegExp(c.message!), c.name).not.toThrow();
      else expect(["accepted", "unchanged"], c.name).toContain(c.expect);
    }
  });

  it.each(corpus.cases.map((c, i) => [c.name, c, i] as const))("%s", async (_name, c, i) => {
    await runCase(c, i);
  });

  it("left the objects accepted before the corpus as they were", async () => {
    for (const [kind, name] of sentinels) {
      expect(specAndStatus(await stored(kind, name))).toEqual(sentinelState.get(kind));
    }
  });
});
