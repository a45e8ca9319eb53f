// The public API's hardening: auth before parsing, the header allowlist, Idempotency-Key reuse,
// event-stream caps and token audiences.
import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { ANNOTATION } from "../../../protocol/index.js";
import { world } from "./fakes.js";
import { DEFAULT_FORWARDED_HEADERS, forwardedHeaders, headerFilter } from "./headers.js";
import { KubernetesAuthorizer, audienceMismatch, buildHttpApi } from "./index.js";
import type { Authorizer } from "./types.js";

const BASE = "/v1/namespaces/team/applications/greet";
const json = (v: unknown, headers: Record<string, string> = {}) => ({
  payload: JSON.stringify(v),
  headers: { "content-type": "application/json", ...headers },
});
let app: FastifyInstance;
afterEach(async () => app?.close());

/** Bearer token = user name; "nobody" is unauthenticated. */
const byToken: Authorizer = {
  authorize: async (token) =>
    token && token !== "nobody"
      ? { allowed: true, user: token }
      : { allowed: false, status: 401, message: "missing bearer token" },
};

describe("authentication before parsing", () => {
  it("answers 401 to a huge or malformed body without running a parser, and parses once authenticated", async () => {
    app = await buildHttpApi(world(byToken, 65_536).deps);
    let parsed = 0;
    app.addHook("preParsing", async () => void parsed++);
    const bodies = [
      { payload: "x".repeat(1 << 20), headers: { "content-type": "application/json" } },
      { payload: "--b\r\nbroken", headers: { "content-type": "multipart/form-data; boundary=b" } },
      { payload: "[".repeat(10_000), headers: { "content-type": "application/json" } },
    ];
    for (const b of bodies) {
      const r = await app.inject({ method: "POST", url: BASE, ...b });
      expect(r.statusCode).toBe(401);
      expect(r.json()).toEqual({ code: "unauthorized", message: "missing bearer token" });
    }
    expect(parsed).toBe(0);
    const big = await app.inject({
      method: "POST",
      url: BASE,
      ...bodies[0]!,
      headers: { ...bodies[0]!.headers, authorization: "Bearer ada" },
    });
    expect(big.statusCode).toBe(413);
    const deep = await app.inject({
      method: "POST",
      url: BASE,
      ...bodies[2]!,
      headers: { ...bodies[2]!.headers, authorization: "bearer ada" },
    });
    expect(deep.statusCode).toBe(400);
    expect(deep.json().message).toBe("body: JSON nested deeper than 100 levels");
    expect(parsed).toBe(2);
  });
});

describe("forwarded headers", () => {
  it("forwards the default allowlist and x-trellis-* only, never credentials", () => {
    const allowed = headerFilter();
    const sent = forwardedHeaders(
      {
        "content-type": "application/json",
        "user-agent": "ua",
        traceparent: "00-abc-def-01",
        "x-request-id": "r1",
        "x-trellis-tenant": "t",
        authorization: "Bearer s",
        cookie: "c",
        "proxy-authorization": "p",
        "x-api-key": "k",
        "x-trellis-token": "s",
        "x-trellis-api-key": "s",
        "x-gateway-secret": "s",
        "x-custom": "c",
        "content-length": "3",
        host: "h",
        "x-list": ["a", "b"],
      },
      allowed,
    );
    expect(sent).toEqual({
      "content-type": "application/json",
      "user-agent": "ua",
      traceparent: "00-abc-def-01",
      "x-request-id": "r1",
      "x-trellis-tenant": "t",
    });
    expect(DEFAULT_FORWARDED_HEADERS).toContain("tracestate");
  });

  it("takes a configured list of names and prefixes, and still refuses credentials in it", () => {
    const allowed = headerFilter(["X-Tenant", "x-acme-*", "authorization", "x-acme-token"]);
    expect(allowed("x-tenant")).toBe(true);
    expect(allowed("x-acme-region")).toBe(true);
    expect(allowed("user-agent")).toBe(false);
    expect(allowed("authorization")).toBe(false);
    expect(allowed("x-acme-token")).toBe(false);
    expect(allowed("x-acme-session")).toBe(false);
  });

  it("caps the count and size of forwarded headers", () => {
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-trellis-h${i}`, "v".repeat(10_000)]));
    const sent = forwardedHeaders(many, headerFilter());
    expect(Object.keys(sent)).toHaveLength(64);
    expect(Object.values(sent).every((v) => v.length === 8192)).toBe(true);
  });

  it("stores only allowlisted headers in the root call, per TRELLIS_HTTP_FORWARD_HEADERS", async () => {
    const w = world();
    app = await buildHttpApi({ ...w.deps, forwardHeaders: ["x-tenant"] });
    const r = await app.inject({
      method: "POST",
      url: BASE,
      ...json(1, { "x-tenant": "acme", "x-request-id": "r", authorization: "Bearer t", "x-api-key": "k" }),
    });
    expect(w.calls.get(`team/${r.json().request_id}`)!.spec.headers).toEqual({ "x-tenant": "acme" });
  });
});

describe("Idempotency-Key", () => {
  it("answers the same request for the same inputs (key order aside) and 422 for other inputs", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const key = { "idempotency-key": "k1" };
    const first = await app.inject({ method: "POST", url: BASE, ...json({ a: 1, b: [2] }, key) });
    expect(first.statusCode).toBe(201);
    const id = first.json().request_id as string;
    expect(w.calls.get(`team/${id}`)!.metadata.annotations?.[ANNOTATION.idempotencyBody]).toMatch(/^[0-9a-f]{64}$/);
    const again = await app.inject({
      method: "POST",
      url: BASE,
      payload: '{"b": [2], "a": 1}',
      headers: { "content-type": "application/json", ...key },
    });
    expect(again.statusCode).toBe(200);
    expect(again.json().request_id).toBe(id);
    const other = await app.inject({ method: "POST", url: BASE, ...json({ a: 2, b: [2] }, key) });
    expect(other.statusCode).toBe(422);
    expect(other.json()).toEqual({
      code: "idempotency_key_reused",
      message: `header Idempotency-Key: already used for request ${id} with different inputs; a key names one request with one body (send a new key for new inputs)`,
    });
    expect(w.calls.m.size).toBe(1);
  });

  it("keeps answering a request made before the inputs were recorded", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const key = { "idempotency-key": "old" };
    const id = (await app.inject({ method: "POST", url: BASE, ...json(1, key) })).json().request_id as string;
    const c = w.calls.get(`team/${id}`)!;
    delete c.metadata.annotations![ANNOTATION.idempotencyBody];
    expect((await app.inject({ method: "POST", url: BASE, ...json(2, key) })).statusCode).toBe(200);
  });
});

describe("event-stream caps", () => {
  const open = async (port: number, path: string, token: string) => {
    const ctl = new AbortController();
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
      signal: ctl.signal,
    });
    return { res, close: () => ctl.abort() };
  };

  it("holds each client to maxPerClient streams (429 with Retry-After) and frees a slot when one closes", async () => {
    const w = world(byToken);
    app = await buildHttpApi({ ...w.deps, sse: { maxPerClient: 2 } });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const id = (await app.inject({ method: "POST", url: BASE, ...json(1, { authorization: "Bearer ada" }) })).json()
      .request_id as string;
    const path = `${BASE}/requests/${id}/progress`;
    const a = await open(port, path, "ada");
    const b = await open(port, path, "ada");
    expect([a.res.status, b.res.status]).toEqual([200, 200]);
    const refused = await open(port, path, "ada");
    expect(refused.res.status).toBe(429);
    expect(refused.res.headers.get("retry-after")).toBe("5");
    expect((await refused.res.json()).message).toMatch(/at most 2 concurrent event streams per client/);
    // Invoking with a stream is refused before the request is made.
    const before = w.calls.m.size;
    const inv = await app.inject({
      method: "POST",
      url: BASE,
      ...json(1, { authorization: "Bearer ada", accept: "text/event-stream" }),
    });
    expect(inv.statusCode).toBe(429);
    expect(w.calls.m.size).toBe(before);
    // Another user has slots of their own.
    const grace = await open(port, path, "grace");
    expect(grace.res.status).toBe(200);
    a.close();
    await expect.poll(() => app.sseStreams.count("user:ada")).toBe(1);
    const c = await open(port, path, "ada");
    expect(c.res.status).toBe(200);
    for (const s of [b, c, grace]) s.close();
    await expect.poll(() => app.sseStreams.count("user:ada") + app.sseStreams.count("user:grace")).toBe(0);
  });

  it("ends a stream after the maximum duration with a stream_timeout event", async () => {
    const w = world();
    app = await buildHttpApi({ ...w.deps, sse: { maxDurationMs: 300 } });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const id = (await app.inject({ method: "POST", url: BASE, ...json(1) })).json().request_id as string;
    const res = await fetch(`http://127.0.0.1:${port}${BASE}/requests/${id}/progress`);
    const text = await res.text(); // ends when the server closes the stream
    expect(text).toContain('event: stream_timeout\ndata: {"message":"the stream reached its maximum duration');
    expect(text).not.toContain("event: completed");
    expect(app.sseStreams.count("addr:127.0.0.1")).toBe(0);
  });
});

describe("token audiences", () => {
  const reviews = (answer: { authenticated: boolean; audiences?: string[] }) => {
    const sent: { path: string; body: { spec: Record<string, unknown> } }[] = [];
    const client = {
      request: async <T>(_m: string, path: string, o?: { body?: unknown }) => {
        sent.push({ path, body: o?.body as { spec: Record<string, unknown> } });
        if (path.endsWith("tokenreviews"))
          return { status: { ...answer, user: answer.authenticated ? { username: "ada" } : undefined } } as T;
        return { status: { allowed: true } } as T;
      },
    };
    return { sent, client };
  };
  const check = { namespace: "team", verb: "create", resource: "functioncalls" } as const;

  it("asks TokenReview for the configured audiences and accepts a token valid for one", async () => {
    const { sent, client } = reviews({ authenticated: true, audiences: ["trellis"] });
    const d = await new KubernetesAuthorizer(client, { audiences: ["trellis", "other"] }).authorize("t", check);
    expect(d).toEqual({ allowed: true, user: "ada" });
    expect(sent[0]!.body.spec).toEqual({ token: "t", audiences: ["trellis", "other"] });
  });

  it("refuses a review that names none of the audiences, and says which audience to mint for", async () => {
    const { client } = reviews({ authenticated: true, audiences: ["https://kubernetes.default.svc"] });
    const d = await new KubernetesAuthorizer(client, { audiences: ["trellis"] }).authorize("t", check);
    expect(d).toEqual({
      allowed: false,
      status: 401,
      message:
        "invalid bearer token: not issued for the audience trellis (the review answered https://kubernetes.default.svc); mint one with kubectl create token <serviceaccount> --audience trellis",
    });
    const none = reviews({ authenticated: false });
    const d2 = await new KubernetesAuthorizer(none.client, { audiences: ["trellis"] }).authorize("t", check);
    expect(d2).toMatchObject({
      status: 401,
      message: "invalid bearer token (tokens must be issued for the audience trellis)",
    });
  });

  it("sends no audiences when none are configured (the API server's own)", async () => {
    const { sent, client } = reviews({ authenticated: true });
    expect((await new KubernetesAuthorizer(client).authorize("t", check)).allowed).toBe(true);
    expect(sent[0]!.body.spec).toEqual({ token: "t" });
    expect(audienceMismatch(undefined, undefined)).toBeUndefined();
    expect(audienceMismatch(["a"], undefined)).toMatch(/answered no audience/);
  });
});
