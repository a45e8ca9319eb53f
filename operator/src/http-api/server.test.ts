import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { world } from "./fakes.js";
import { KubernetesAuthorizer, allowAll, buildHttpApi } from "./index.js";

const asJson = (v: unknown, headers: Record<string, string> = {}) => ({
  payload: JSON.stringify(v),
  headers: { "content-type": "application/json", ...headers },
});
const BASE = "/v1/namespaces/team/applications/greet";
let app: FastifyInstance;
afterEach(async () => app?.close());

describe("invoke", () => {
  it("creates the root FunctionCall with the JSON body as first argument, labels and headers", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const r = await app.inject({
      method: "POST",
      url: BASE,
      payload: { who: "ada" },
      headers: { "x-trellis-trace": "t1" },
    });
    expect(r.statusCode).toBe(201);
    const id = r.json().request_id as string;
    const c = w.calls.get(`team/${id}`)!;
    expect(c.spec).toMatchObject({ application: "greet", function: "hello", args: [{ value: { who: "ada" } }] });
    expect(c.spec.headers?.["x-trellis-trace"]).toBe("t1");
    expect(c.metadata.labels).toEqual({
      "trellis.dev/application": "greet",
      "trellis.dev/request": id,
      "trellis.dev/function": "hello",
    });
  });

  it("returns the same request for a retry with the same Idempotency-Key", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const send = () => app.inject({ method: "POST", url: BASE, payload: [1], headers: { "idempotency-key": "abc" } });
    const a = await send();
    const b = await send();
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(200);
    expect(b.json().request_id).toBe(a.json().request_id);
    expect(w.calls.m.size).toBe(1);
  });

  it("takes several arguments and keyword arguments from multipart/form-data", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const form = new FormData();
    form.append("args", JSON.stringify([1, "two"]));
    form.append("kwargs", JSON.stringify({ flag: true }));
    form.append("name", "plain text");
    const req = new Request("http://x", { method: "POST", body: form });
    const r = await app.inject({
      method: "POST",
      url: BASE,
      payload: Buffer.from(await req.arrayBuffer()),
      headers: { "content-type": req.headers.get("content-type")! },
    });
    expect(r.statusCode).toBe(201);
    const c = w.calls.get(`team/${r.json().request_id}`)!;
    expect(c.spec.args).toEqual([{ value: 1 }, { value: "two" }]);
    expect(c.spec.kwargs).toEqual({ flag: { value: true }, name: { value: "plain text" } });
  });

  it("puts a large input in the blob store", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const big = "x".repeat(100_000);
    const r = await app.inject({ method: "POST", url: BASE, payload: { big } });
    const c = w.calls.get(`team/${r.json().request_id}`)!;
    const ref = c.spec.args?.[0]?.blob as string;
    expect(ref.startsWith(`team/${r.json().request_id}/`)).toBe(true);
    expect(JSON.parse(w.blobs.get(ref)!.toString())).toEqual({ value: { big } });
  });

  it("refuses pickles, malformed JSON, bad media types, unknown applications and oversized bodies", async () => {
    const w = world(allowAll, 1024);
    app = await buildHttpApi(w.deps);
    const pickled = await app.inject({ method: "POST", url: BASE, payload: { a: [{ pickle: "gAM=" }] } });
    expect(pickled.statusCode).toBe(400);
    expect(pickled.json().message).toBe("body.a[0].pickle: pickled values are not accepted over HTTP; send JSON");
    const raw = await app.inject({
      method: "POST",
      url: BASE,
      payload: Buffer.from([0x80, 3]),
      headers: { "content-type": "application/python-pickle" },
    });
    expect(raw.statusCode).toBe(415);
    const bad = await app.inject({
      method: "POST",
      url: BASE,
      payload: "{nope",
      headers: { "content-type": "application/json" },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^body: /);
    const notMime = await app.inject({
      method: "POST",
      url: BASE,
      payload: "<a/>",
      headers: { "content-type": `text/${"x".repeat(300)}` },
    });
    expect(notMime.statusCode).toBe(415);
    expect(notMime.json().message).toMatch(/^body: content type must be a MIME type/);
    const missing = await app.inject({ method: "POST", url: "/v1/namespaces/team/applications/nope", ...asJson(1) });
    expect(missing.statusCode).toBe(404);
    const badName = await app.inject({
      method: "POST",
      url: "/v1/namespaces/team/applications/-bad",
      ...asJson(1),
    });
    expect(badName.statusCode).toBe(400);
    expect(badName.json().message).toBe(
      "params.application: must be an Application name (a DNS label) or a Tensorlake application name (a Python identifier, or Class.method)",
    );
    const big = await app.inject({ method: "POST", url: BASE, payload: { s: "y".repeat(2000) } });
    expect(big.statusCode).toBe(413);
    expect(big.json().message).toBe("body: larger than the limit of 1024 bytes");
    expect(w.calls.m.size).toBe(0);
  });
});

describe("requests", () => {
  it("reports pending, success with the JSON output, and lists newest first", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const a = (await app.inject({ method: "POST", url: BASE, ...asJson(1) })).json().request_id;
    const b = (await app.inject({ method: "POST", url: BASE, ...asJson(2) })).json().request_id;
    const pending = await app.inject({ url: `${BASE}/requests/${a}` });
    expect(pending.json()).toMatchObject({ id: a, status: "pending", outcome: null });
    expect((await app.inject({ url: `${BASE}/requests/${a}/output` })).statusCode).toBe(409);
    w.update(a, { phase: "Succeeded", output: { value: "hi" } });
    expect((await app.inject({ url: `${BASE}/requests/${a}` })).json()).toMatchObject({ outcome: "success" });
    const out = await app.inject({ url: `${BASE}/requests/${a}/output` });
    expect(out.headers["content-type"]).toMatch(/^application\/json/);
    expect(out.json()).toBe("hi");
    const list = await app.inject({ url: `${BASE}/requests` });
    expect(list.json().requests.map((r: { id: string }) => r.id)).toEqual([b, a]);
  });

  it("reports a request_error failure with its message", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const id = (await app.inject({ method: "POST", url: BASE, ...asJson(1) })).json().request_id;
    w.update(id, { phase: "Failed", error: { type: "RequestError", message: "bad input", reason: "request_error" } });
    const r = (await app.inject({ url: `${BASE}/requests/${id}` })).json();
    expect(r).toMatchObject({
      status: "failure",
      outcome: { failure: "request_error" },
      request_error: { message: "bad input" },
    });
    const out = await app.inject({ url: `${BASE}/requests/${id}/output` });
    expect(out.statusCode).toBe(409);
    expect(out.json().message).toContain("bad input");
  });

  it("serves outputs from the blob store, and pickles only to a client whose Accept admits them", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const a = (await app.inject({ method: "POST", url: BASE, ...asJson(1) })).json().request_id;
    w.blobs.set(`team/${a}/1`, Buffer.from(JSON.stringify({ list: [{ value: 1 }, { value: [2] }] })));
    w.update(a, { phase: "Succeeded", output: { blob: `team/${a}/1` } });
    expect((await app.inject({ url: `${BASE}/requests/${a}/output` })).json()).toEqual([1, [2]]);
    w.update(a, { phase: "Succeeded", output: { pickle: Buffer.from("PKL").toString("base64") } });
    const output = (accept?: string) =>
      app.inject({ url: `${BASE}/requests/${a}/output`, headers: accept === undefined ? {} : { accept } });
    const refused = await output("application/json");
    expect(refused.statusCode).toBe(406);
    expect(refused.json().message).toContain("Accept: application/python-pickle");
    expect((await output("application/json, application/python-pickle;q=0")).statusCode).toBe(406);
    for (const accept of ["application/python-pickle", "application/*", "*/*", undefined]) {
      const asked = await output(accept);
      expect(asked.headers["content-type"]).toBe("application/python-pickle");
      expect(asked.body).toBe("PKL");
    }
  });

  it("deletes the root call, and 404s for calls of other applications or unknown ids", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const id = (await app.inject({ method: "POST", url: BASE, ...asJson(1) })).json().request_id;
    expect((await app.inject({ url: `/v1/namespaces/team/applications/other/requests/${id}` })).statusCode).toBe(404);
    const d = await app.inject({ method: "DELETE", url: `${BASE}/requests/${id}` });
    expect(d.json()).toEqual({ id, deleted: true });
    expect(w.deleted).toEqual([`team/${id}`]);
    expect((await app.inject({ method: "DELETE", url: `${BASE}/requests/${id}` })).statusCode).toBe(404);
  });

  it("streams progress and the outcome as server-sent events", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    await app.listen({ host: "127.0.0.1", port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const id = (await app.inject({ method: "POST", url: BASE, ...asJson(1) })).json().request_id;
    const res = await fetch(`http://127.0.0.1:${port}${BASE}/requests/${id}/progress`);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = "";
    const readUntil = async (s: string) => {
      while (!text.includes(s)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    };
    await readUntil("event: status");
    w.update(id, { phase: "Running", progress: { current: 1, total: 4 } });
    await readUntil('"current":1');
    w.update(id, { phase: "Succeeded", output: { value: 3 } });
    await readUntil("event: completed");
    await readUntil("\n\n");
    expect(text).toContain('event: progress\ndata: {"current":1,"total":4}');
    expect(text).toMatch(/event: completed\ndata: \{[^\n]*"outcome":"success"/);
  });
});

describe("applications, auth, openapi", () => {
  it("lists applications in Tensorlake's shape, with Trellis' fields", async () => {
    app = await buildHttpApi(world().deps);
    const list = await app.inject({ url: "/v1/namespaces/team/applications" });
    expect(list.json().applications).toEqual([
      {
        name: "greet",
        description: "",
        tags: {},
        version: "1",
        created_at: Date.parse("2026-01-01T00:00:00Z"),
        tombstoned: false,
        namespace: "team",
        entrypoint: "hello",
        functions: ["hello", "shout"],
        ready: true,
      },
    ]);
    expect((await app.inject({ url: "/v1/namespaces/team/applications/none" })).statusCode).toBe(404);
  });

  it("asks TokenReview and SubjectAccessReview with the route's verb, and caches the decision", async () => {
    const sent: { path: string; body: { spec: Record<string, unknown> } }[] = [];
    const client = {
      request: async <T>(_m: string, path: string, o?: { body?: unknown }): Promise<T> => {
        const body = o?.body as { spec: { token?: string; resourceAttributes: { verb: string } } };
        sent.push({ path, body });
        if (path.endsWith("tokenreviews"))
          return (
            body.spec.token === "good"
              ? { status: { authenticated: true, user: { username: "alice", groups: ["dev"] } } }
              : { status: { authenticated: false } }
          ) as T;
        return { status: { allowed: body.spec.resourceAttributes.verb !== "delete" } } as T;
      },
    };
    app = await buildHttpApi(world(new KubernetesAuthorizer(client)).deps);
    expect((await app.inject({ method: "POST", url: BASE, ...asJson(1) })).statusCode).toBe(401);
    const bad = await app.inject({ method: "POST", url: BASE, ...asJson(1, { authorization: "Bearer bad" }) });
    expect(bad.statusCode).toBe(401);
    const auth = { authorization: "Bearer good" };
    const ok = await app.inject({ method: "POST", url: BASE, ...asJson(1, auth) });
    expect(ok.statusCode).toBe(201);
    const sar = sent.find((s) => s.path.endsWith("subjectaccessreviews"))!.body.spec;
    expect(sar).toMatchObject({
      user: "alice",
      groups: ["dev"],
      resourceAttributes: { namespace: "team", verb: "create", group: "trellis.dev", resource: "functioncalls" },
    });
    const id = ok.json().request_id;
    const del = await app.inject({ method: "DELETE", url: `${BASE}/requests/${id}`, headers: auth });
    expect(del.statusCode).toBe(403);
    expect(del.json().message).toBe("alice may not delete functioncalls.trellis.dev in namespace team");
    const before = sent.length;
    await app.inject({ method: "POST", url: BASE, ...asJson(2, auth) });
    expect(sent.length).toBe(before); // cached
  });

  it("asks SubjectAccessReview about pods/log as the core subresource log of pods", async () => {
    const sars: Record<string, unknown>[] = [];
    const client = {
      request: async <T>(_m: string, path: string, o?: { body?: unknown }): Promise<T> => {
        if (path.endsWith("tokenreviews")) return { status: { authenticated: true, user: { username: "bob" } } } as T;
        sars.push((o?.body as { spec: { resourceAttributes: Record<string, unknown> } }).spec.resourceAttributes);
        return { status: { allowed: false } } as T;
      },
    };
    const d = await new KubernetesAuthorizer(client).authorize("t", {
      namespace: "team",
      verb: "get",
      resource: "pods/log",
    });
    expect(sars).toEqual([{ namespace: "team", verb: "get", group: "", resource: "pods", subresource: "log" }]);
    expect(d).toEqual({ allowed: false, status: 403, message: "bob may not get pods/log in namespace team" });
  });

  it("serves an OpenAPI document generated from the route schemas", async () => {
    app = await buildHttpApi(world().deps, {
      extraRoutes: [async (a) => void a.get("/extra", async () => "m 1")],
    });
    const doc = (await app.inject({ url: "/openapi.json" })).json();
    expect(doc.openapi).toBe("3.0.3");
    const invoke = doc.paths["/v1/namespaces/{namespace}/applications/{application}"].post;
    expect(invoke.parameters.map((p: { name: string }) => p.name)).toEqual([
      "namespace",
      "application",
      "idempotency-key",
    ]);
    expect(Object.keys(invoke.requestBody.content)).toEqual(["application/json", "multipart/form-data", "*/*"]);
    expect(doc.paths["/v1/namespaces/{namespace}/applications/{application}/requests/{request}"].delete).toBeDefined();
    expect(doc.paths["/healthz"]).toBeUndefined();
    expect((await app.inject({ url: "/extra" })).body).toBe("m 1");
    // Metrics have their own port (metrics/server.ts), never the public one.
    expect((await app.inject({ url: "/metrics" })).statusCode).toBe(404);
    expect((await app.inject({ url: "/healthz" })).json()).toEqual({ ok: true });
  });
});
