// The hostile-input corpus of the HTTP API (test/hostile/http-api.json): every case is
// refused with {code, message}, the message names the field or part and the rule, and the refusal
// creates nothing and loses nothing that was accepted before it (calls, blobs, deployed objects).
// Cases with `auth` run against Kubernetes auth and must be refused before any body parser ran;
// `notForwarded` lists request headers that must never reach a root call's spec.headers.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import type { KubeObject } from "../../operator/src/kube/index.js";
import type { CodeConfigMap, DeployStore } from "../../operator/src/http-api/deploy-store.js";
import { world } from "../../operator/src/http-api/fakes.js";
import { KubernetesAuthorizer, allowAll, buildHttpApi } from "../../operator/src/http-api/index.js";
import type { ApplicationObj, Authorizer } from "../../operator/src/http-api/types.js";

interface Bytes {
  text?: string;
  base64?: string;
  /** The text or base64 bytes, repeated this many times (big bodies without a big file). */
  repeat?: number;
}
interface Part extends Bytes {
  name: string;
  filename?: string;
  contentType?: string;
}
interface Case extends Bytes {
  name: string;
  method: "GET" | "POST" | "DELETE";
  path: string;
  headers?: Record<string, string | string[]>;
  multipart?: Part[];
  /** The world's body limit in bytes (the default 10 MiB when absent). */
  bodyLimit?: number;
  status: number;
  message: string;
  /** Why the case is here (the rule, or a finding it pins down). */
  note?: string;
  /** "kubernetes": bearer tokens reviewed (only "good" is valid); the body must never be parsed. */
  auth?: "kubernetes";
  /** Event streams this client (127.0.0.1) holds already when the case runs. */
  openStreams?: number;
  /** Headers the answer must carry (e.g. Retry-After). */
  answerHeaders?: Record<string, string>;
}

const CORPUS = fileURLToPath(new URL("./http-api.json", import.meta.url));
const corpus = JSON.parse(readFileSync(CORPUS, "utf8")) as { cases: Case[]; notForwarded: string[] };
const BOUNDARY = "----hostile0corpus0boundary";

function bytes(b: Bytes): Buffer | undefined {
  if (b.text === undefined && b.base64 === undefined) return undefined;
  const one = b.text !== undefined ? Buffer.from(b.text, "utf8") : Buffer.from(b.base64!, "base64");
  return b.repeat ? Buffer.concat(Array.from({ length: b.repeat }, () => one)) : one;
}

/** A multipart/form-data body written by hand, so that odd names and content types reach the server as sent. */
function multipart(parts: Part[]): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const filename = p.filename !== undefined ? `; filename="${p.filename}"` : "";
    const type = p.contentType !== undefined ? `\r\nContent-Type: ${p.contentType}` : "";
    chunks.push(
      Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${p.name}"${filename}${type}\r\n\r\n`),
    );
    chunks.push(bytes(p) ?? Buffer.alloc(0), Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

/** The deploy route's API server: objects by kind/namespace/name, every write logged. */
class FakeDeployStore implements DeployStore {
  readonly objects = new Map<string, KubeObject>();
  readonly writes: string[] = [];
  private uids = 0;
  private key = (o: KubeObject) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
  getApplication = async (ns: string, name: string) =>
    this.objects.get(`Application/${ns}/${name}`) as ApplicationObj | undefined;
  apply = async <T extends KubeObject>(obj: T): Promise<T> => {
    this.writes.push(`apply ${this.key(obj)}`);
    const uid = this.objects.get(this.key(obj))?.metadata.uid ?? `uid-${++this.uids}`;
    const next = structuredClone({ ...obj, metadata: { ...obj.metadata, uid } });
    this.objects.set(this.key(obj), next);
    return next;
  };
  listCodeConfigMaps = async (ns: string, app: string) =>
    [...this.objects.values()].filter(
      (o) =>
        o.kind === "ConfigMap" && o.metadata.namespace === ns && o.metadata.labels?.["trellis.dev/application"] === app,
    ) as CodeConfigMap[];
  deleteConfigMap = async (ns: string, name: string) => {
    this.writes.push(`delete ConfigMap/${ns}/${name}`);
    this.objects.delete(`ConfigMap/${ns}/${name}`);
  };
  /** Logged only when something was there: deleting nothing (a 404 of the API server) changes nothing. */
  deleteApplication = async (ns: string, name: string) => {
    const gone = this.objects.delete(`Application/${ns}/${name}`);
    if (gone) this.writes.push(`delete Application/${ns}/${name}`);
    return gone;
  };
}

/** TokenReview and SubjectAccessReview answers: the token "good" is alice, who may do anything. */
const kubernetesAuth = new KubernetesAuthorizer({
  request: async <T>(_m: string, path: string, o?: { body?: unknown }) => {
    const token = (o?.body as { spec: { token?: string } }).spec.token;
    if (path.endsWith("tokenreviews"))
      return (
        token === "good"
          ? { status: { authenticated: true, user: { username: "alice" } } }
          : { status: { authenticated: false, error: "token expired" } }
      ) as T;
    return { status: { allowed: true } } as T;
  },
});

/**
 * A world with state accepted before the hostile request: three requests (one in a blob, one with
 * an Idempotency-Key) and a deploy. Seeding runs without auth; `strict` then turns auth on.
 */
async function seeded(bodyLimit?: number) {
  let authorizer: Authorizer = allowAll;
  const w = world({ authorize: (t, c) => authorizer.authorize(t, c) }, bodyLimit);
  const store = new FakeDeployStore();
  const deps = { ...w.deps, deploy: store };
  const app = await buildHttpApi(deps);
  let parses = 0;
  app.addHook("preParsing", async () => void parses++);
  const invoke = (payload: string | Buffer, type: string) =>
    app.inject({
      method: "POST",
      url: "/v1/namespaces/team/applications/greet",
      payload,
      headers: { "content-type": type },
    });
  expect((await invoke('{"a":1}', "application/json")).statusCode).toBe(201);
  expect((await invoke(Buffer.alloc(70_000, 1), "application/octet-stream")).statusCode).toBe(201);
  const keyed = await app.inject({
    method: "POST",
    url: "/v1/namespaces/team/applications/greet",
    payload: '{"b": [1, 2]}',
    headers: { "content-type": "application/json", "idempotency-key": "seed-key" },
  });
  expect(keyed.statusCode).toBe(201);
  const manifest = {
    name: "hello_world",
    functions: { hello_world: { name: "hello_world", image: "example.org/app:1" } },
    entrypoint: { function_name: "hello_world" },
  };
  const deploy = await app.inject({
    method: "POST",
    url: "/v1/namespaces/team/applications",
    payload: multipart([
      { name: "code", filename: "code.zip", contentType: "application/zip", base64: "UEsDBHYx" },
      { name: "code_content_type", text: "application/zip" },
      { name: "application", text: JSON.stringify(manifest) },
      { name: "upgrade_requests_to_latest_code", text: "false" },
    ]),
    headers: { "content-type": `multipart/form-data; boundary=${BOUNDARY}` },
  });
  expect(deploy.statusCode, deploy.body).toBe(200);
  expect(w.calls.m.size).toBe(3);
  expect(w.blobs.size).toBe(1);
  expect(store.objects.size).toBe(2);
  const snapshot = () =>
    structuredClone({
      calls: [...w.calls.m.entries()],
      apps: [...w.apps.m.entries()],
      blobs: [...w.blobs.entries()].map(([k, v]) => [k, v.toString("base64")]),
      deletedCalls: [...w.deleted],
      objects: [...store.objects.entries()],
      writes: [...store.writes],
    });
  const strict = () => void (authorizer = kubernetesAuth);
  return { app, snapshot, strict, parses: () => parses, calls: w.calls };
}

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe("hostile-input corpus: test/hostile/http-api.json", () => {
  it("holds named, distinct cases with a status and a message rule", () => {
    expect(corpus.cases.length).toBeGreaterThanOrEqual(40);
    const names = corpus.cases.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of corpus.cases) {
      expect(c.status, c.name).toBeGreaterThanOrEqual(400);
      expect(() => new RegExp(c.message), c.name).not.toThrow();
      expect([c.text, c.base64, c.multipart].filter((b) => b !== undefined).length, c.name).toBeLessThanOrEqual(1);
    }
  });

  // Bodies of several MiB take seconds on a busy machine.
  it.each(corpus.cases.map((c) => [c.name, c] as const))("%s", { timeout: 30_000 }, async (_name, c) => {
    const w = await seeded(c.bodyLimit);
    app = w.app;
    const before = w.snapshot();
    if (c.auth) w.strict();
    for (let i = 0; i < (c.openStreams ?? 0); i++) app.sseStreams.acquire("addr:127.0.0.1");
    const parsesBefore = w.parses();
    const headers: Record<string, string | string[]> = { ...c.headers };
    let payload = bytes(c);
    if (c.multipart) {
      payload = multipart(c.multipart);
      headers["content-type"] ??= `multipart/form-data; boundary=${BOUNDARY}`;
    }
    const r = await app.inject({ method: c.method, url: c.path, headers, ...(payload ? { payload } : {}) });
    expect(r.statusCode, r.body).toBe(c.status);
    // Refused before the body was read: no content-type parser or multipart reader ran.
    if (c.auth) expect(w.parses()).toBe(parsesBefore);
    for (const [k, v] of Object.entries(c.answerHeaders ?? {})) expect(r.headers[k], k).toBe(v);
    expect(r.headers["content-type"]).toMatch(/^application\/json/);
    const body = r.json() as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["code", "message"]);
    expect(typeof body.code).toBe("string");
    expect(body.message, r.body).toMatch(new RegExp(c.message));
    // Nothing created, nothing lost: calls, blobs, cached Applications and deployed objects as before.
    expect(w.snapshot()).toEqual(before);
  });

  it("forwards none of the credential headers into the root call's spec.headers", async () => {
    expect(corpus.notForwarded.length).toBeGreaterThanOrEqual(10);
    const w = await seeded();
    app = w.app;
    const headers = Object.fromEntries(corpus.notForwarded.map((h) => [h, "s3cret"]));
    const r = await app.inject({
      method: "POST",
      url: "/v1/namespaces/team/applications/greet",
      payload: "1",
      headers: { ...headers, "content-type": "application/json", "x-request-id": "rid-1" },
    });
    expect(r.statusCode, r.body).toBe(201);
    const sent = w.calls.get(`team/${(r.json() as { request_id: string }).request_id}`)!.spec.headers ?? {};
    expect(sent["x-request-id"]).toBe("rid-1"); // the allowlist does forward
    for (const h of corpus.notForwarded) expect(sent[h], h).toBeUndefined();
    expect(JSON.stringify(sent)).not.toContain("s3cret");
  });
});
