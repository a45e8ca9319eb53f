// The hostile-input corpus of the runtime API (test/hostile/runtime-api.json), run against the
// engine's unit harness (the runtime API over the real engine, in-memory objects, no API server):
// every case is refused with {code, message}, the message names the field and the rule, and the
// refusal changes nothing that was accepted before it (calls, their status, blobs, request state).
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUNTIME_API_PREFIX, childName } from "../../protocol/index.js";
import { type Harness, KEY, harness } from "../../operator/src/functioncall/test-harness.js";
import { FileBlobStore } from "../../operator/src/blobs/index.js";
import { buildRuntimeApi, podToken } from "../../operator/src/runtime-api/index.js";
import { BODY_LIMITS, type BodyLimits } from "../../operator/src/runtime-api/limits.js";

interface Part {
  text: string;
  repeat?: number;
}
interface Case {
  name: string;
  /** The pod the request comes from (pf runs r, pg runs r2, ph runs rr at attempt 2). */
  as?: string;
  /** own | none | forged | raw:<t> | pod:<p> | key:<k> | uid:<u> | ns:<namespace> | basic */
  token?: string;
  /** x-trellis-pod as sent; null leaves it out. */
  podHeader?: string | null;
  method: "GET" | "POST" | "PUT";
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  text?: string;
  parts?: Part[];
  /** Lowered body limits of the runtime API the case runs against (same engine and blob store). */
  limits?: Partial<BodyLimits>;
  status: number;
  code: string;
  message: string;
}

/** The filesystem store plus URLs (as an object store hands out) so POST /blob-urls is served. */
class PresigningStore extends FileBlobStore {
  presign = async (ref: string, op: { method: string }) => `https://store.invalid/${ref}?${op.method}`;
}

const CORPUS = fileURLToPath(new URL("./runtime-api.json", import.meta.url));
const corpus = JSON.parse(readFileSync(CORPUS, "utf8")) as { cases: Case[] };

let h: Harness;
/** The blob store's directory (the harness's own store is replaced by one that presigns). */
let blobDir = "";
const blobOf: Record<string, string> = {};

/** Placeholders: {blob:<request>} and {child:<parent>:<seq>}. */
const fill = (s: string): string =>
  s
    .replace(/\{blob:([a-z0-9-]+)\}/g, (_, r: string) => blobOf[r] ?? `missing-blob-of-${r}`)
    .replace(/\{child:([a-z0-9-]+):(\d+)\}/g, (_, p: string, n: string) => childName(p, p, Number(n)));
const fillJson = (v: unknown): unknown =>
  typeof v === "string"
    ? fill(v)
    : Array.isArray(v)
      ? v.map(fillJson)
      : typeof v === "object" && v !== null
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fillJson(x)]))
        : v;

function authHeaders(c: Case): Record<string, string> {
  const pod = c.as ?? "pf";
  const out: Record<string, string> = {};
  if (c.podHeader !== null) out["x-trellis-pod"] = c.podHeader ?? `ns/${pod}`;
  const [kind = "own", arg = ""] = (c.token ?? "own").split(/:(.*)/s);
  const bearer = (t: string) => (out.authorization = `Bearer ${t}`);
  if (kind === "own") bearer(podToken(KEY, "ns", pod, `uid-${pod}`));
  else if (kind === "forged") bearer(`t2.${"0".repeat(64)}`);
  else if (kind === "raw") bearer(arg);
  else if (kind === "pod") bearer(podToken(KEY, "ns", arg, `uid-${arg}`));
  else if (kind === "key") bearer(podToken(arg, "ns", pod, `uid-${pod}`));
  else if (kind === "uid") bearer(podToken(KEY, "ns", pod, arg));
  else if (kind === "ns") bearer(podToken(KEY, arg, pod, `uid-${pod}`));
  else if (kind === "basic") out.authorization = `Basic ${Buffer.from(`${pod}:x`).toString("base64")}`;
  return out;
}

function payloadOf(c: Case): string | Buffer | undefined {
  if (c.parts) return Buffer.concat(c.parts.map((p) => Buffer.from(fill(p.text).repeat(p.repeat ?? 1), "utf8")));
  if (c.text !== undefined) return c.text;
  return c.body === undefined ? undefined : JSON.stringify(fillJson(c.body));
}

/** Files under the blob store, with their bytes. */
function blobFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p).toString("base64");
    }
  };
  walk(dir);
  return out;
}

/** The runtime API over the harness's engine with other body limits. */
function limitedApi(limits: Partial<BodyLimits>) {
  const api = buildRuntimeApi(
    h.engine.runtimePort,
    {
      operatorKey: KEY,
      podIdentity: (ns, pod) =>
        ns === "ns" && h.pods.has(pod)
          ? { application: "app", function: h.pods.get(pod)!, uid: `uid-${pod}` }
          : "unknown",
      blobs: new PresigningStore(blobDir),
    },
    { ...BODY_LIMITS, ...limits },
  );
  extraApis.push(api);
  return api;
}
const extraApis: { close(): Promise<unknown> }[] = [];

const snapshot = () => structuredClone({ calls: h.api.list(), writes: h.api.writes.length, blobs: blobFiles(blobDir) });

async function ok(pod: string, method: "GET" | "POST" | "PUT", url: string, body?: unknown) {
  const r = await h.req(pod, method, url, body);
  expect(r.status, `${pod} ${method} ${url}: ${JSON.stringify(r.json())}`).toBeLessThan(300);
  return r.json();
}

async function upload(pod: string, call: string, doc: unknown): Promise<string> {
  const r = await h.runtimeApi.inject({
    method: "PUT",
    url: `${RUNTIME_API_PREFIX}/blobs?call=${call}`,
    headers: {
      "x-trellis-pod": `ns/${pod}`,
      authorization: `Bearer ${podToken(KEY, "ns", pod, `uid-${pod}`)}`,
      "content-type": "application/octet-stream",
    },
    payload: Buffer.from(JSON.stringify(doc)),
  });
  expect(r.statusCode, r.body).toBe(201);
  return (r.json() as { blob: string }).blob;
}

/** pf runs r, pg runs r2, ph runs attempt 2 of rr (attempt 1 failed); a blob under r and r2; a state key of r. */
async function world(): Promise<void> {
  // Heartbeats are not sent here: pods must not lose their calls while the corpus runs.
  blobDir = mkdtempSync(join(tmpdir(), "trellis-hostile-"));
  h = await harness({ heartbeatTimeoutMs: 3_600_000, maxBlobBytes: 1024 * 1024 }, undefined, {
    blobs: new PresigningStore(blobDir),
  });
  for (const p of ["pf", "pg", "ph"]) h.pods.set(p, "f");
  const lease = async (pod: string, name: string) => {
    const a = (await ok(pod, "POST", "/lease", { capacity: 1, waitMs: 2000 })).assignments;
    expect(a.map((x: { call: string }) => x.call)).toEqual([name]);
    return a[0] as { attempt: number };
  };
  await h.createRoot("r");
  await lease("pf", "r");
  await h.createRoot("r2");
  await lease("pg", "r2");
  await h.createRoot("rr", {
    retries: { maxRetries: 1, initialDelaySeconds: 0, maxDelaySeconds: 0, delayMultiplier: 1 },
  });
  expect((await lease("ph", "rr")).attempt).toBe(1);
  await ok("ph", "POST", "/calls/rr/failure", { attempt: 1, kind: "user", error: { type: "E", message: "first" } });
  expect((await lease("ph", "rr")).attempt).toBe(2);
  blobOf.r = await upload("pf", "r", { value: 1 });
  blobOf.r2 = await upload("pg", "r2", { value: 2 });
  await ok("pf", "PUT", "/requests/r/state/k", { value: { value: 1 } });
  await h.until("writes settled", () => h.call("rr")?.status?.phase === "Running");
}

beforeAll(world, 30_000);
afterAll(async () => {
  await Promise.all(extraApis.map((a) => a.close()));
  await h?.close();
  if (blobDir) rmSync(blobDir, { recursive: true, force: true });
});

describe("hostile-input corpus: test/hostile/runtime-api.json", () => {
  it("holds at least 30 named, distinct cases, each with a 4xx, a code and a message rule", () => {
    expect(corpus.cases.length).toBeGreaterThanOrEqual(30);
    const names = corpus.cases.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of corpus.cases) {
      expect(c.status, c.name).toBeGreaterThanOrEqual(400);
      expect(c.status, c.name).toBeLessThan(500);
      expect(() => new RegExp(c.message), c.name).not.toThrow();
      expect([c.body, c.text, c.parts].filter((b) => b !== undefined).length, c.name).toBeLessThanOrEqual(1);
    }
  });

  it.each(corpus.cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const before = snapshot();
    const payload = payloadOf(c);
    const headers = { ...(c.body !== undefined ? { "content-type": "application/json" } : {}), ...c.headers };
    const api = c.limits ? limitedApi(c.limits) : h.runtimeApi;
    const r = await api.inject({
      method: c.method,
      url: RUNTIME_API_PREFIX + fill(c.path),
      headers: { ...headers, ...authHeaders(c) },
      ...(payload === undefined ? {} : { payload }),
    });
    expect(r.statusCode, r.body).toBe(c.status);
    const body = r.json() as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["code", "message"]);
    expect(body.code, r.body).toBe(c.code);
    expect(body.message, r.body).toMatch(new RegExp(c.message));
    // Nothing accepted before is lost or changed: calls and their status, blobs, request state.
    await new Promise((res) => setImmediate(res));
    expect(snapshot()).toEqual(before);
  });

  it("the world is intact after the corpus: every call still runs its attempt, blobs and state readable", async () => {
    expect(["r", "r2", "rr"].map((n) => [h.call(n)?.status?.phase, h.call(n)?.status?.attempts])).toEqual([
      ["Running", 1],
      ["Running", 1],
      ["Running", 2],
    ]);
    expect(await ok("pf", "GET", "/requests/r/state/k")).toEqual({ value: { value: 1 } });
    const g = await h.runtimeApi.inject({
      method: "GET",
      url: `${RUNTIME_API_PREFIX}/blobs/${blobOf.r}`,
      headers: { "x-trellis-pod": "ns/pf", authorization: `Bearer ${podToken(KEY, "ns", "pf", "uid-pf")}` },
    });
    expect([g.statusCode, g.body]).toEqual([200, JSON.stringify({ value: 1 })]);
  });
});
