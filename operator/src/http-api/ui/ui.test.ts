import Fastify, { type FastifyInstance, type FastifyPluginAsync } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { world } from "../fakes.js";
import { buildHttpApi } from "../index.js";
import type { AccessCheck, Authorizer, CallObject, HttpApiDeps } from "../types.js";
import { useZod } from "../zod-schemas.js";
import { assetMap } from "./assets.js";
import { MAX_FAILED_ITEMS, requestGraph } from "./graph.js";
import { webView } from "./index.js";

const BASE = "/v1/namespaces/team/applications/greet";
let app: FastifyInstance;
afterEach(async () => app?.close());

/** A server with only the web view (zod validation as in buildHttpApi), on given files. */
async function bare(plugin: (deps: HttpApiDeps) => FastifyPluginAsync): Promise<FastifyInstance> {
  const f = Fastify({ routerOptions: { maxParamLength: 1024 } });
  useZod(f, []);
  await f.register(plugin(world().deps));
  return f;
}

let seq = 0;
function call(name: string, spec: Partial<CallObject["spec"]> = {}, status: CallObject["status"] = {}): CallObject {
  return {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "FunctionCall",
    metadata: { name, namespace: "team", creationTimestamp: new Date(1_000 * ++seq).toISOString() },
    spec: { application: "greet", function: "hello", ...spec },
    status,
  } as CallObject;
}

describe("web view files", () => {
  it("serves the page, its stylesheet and its script (built from source) with their content types", async () => {
    app = await buildHttpApi(world().deps);
    const page = await app.inject({ url: "/ui/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
    expect(page.headers["set-cookie"]).toBeUndefined();
    expect(page.body).toContain('<script type="module" src="ui.js">');
    const css = await app.inject({ url: "/ui/ui.css" });
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    const js = await app.inject({ url: "/ui/ui.js" });
    expect(js.statusCode).toBe(200);
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    // dagre is bundled in: the page loads nothing from elsewhere.
    expect(js.body.length).toBeGreaterThan(20_000);
    expect(js.body).not.toMatch(/from\s*["']@dagrejs/);
    const bare = await app.inject({ url: "/ui" });
    expect(bare.statusCode).toBe(308);
    expect(bare.headers.location).toBe("/ui/");
  }, 30_000);

  it("answers 404 for unknown files and never reads a path from the URL", async () => {
    const files = assetMap({ "index.html": "<p>x</p>", "ui.js": "1", "notes.txt": "skipped: no known type" });
    app = await bare((deps) => webView(deps, { assets: async () => files }));
    for (const url of [
      "/ui/nope.js",
      "/ui/notes.txt",
      "/ui/..%2f..%2fpackage.json",
      "/ui/%2e%2e%2fserver.ts",
      "/ui/..%5cserver.ts",
      "/ui/../package.json",
      "/ui/assets.ts",
      "/ui/build-assets.mjs",
      "/ui/static%2findex.html",
      "/ui/static/index.html",
      "/ui/%00",
    ]) {
      const r = await app.inject({ url });
      expect([400, 404], url).toContain(r.statusCode);
      expect(r.body, url).not.toContain("import");
    }
    expect((await app.inject({ url: "/ui/ui.js" })).body).toBe("1");
    expect((await app.inject({ url: `/ui/${"a".repeat(300)}` })).statusCode).toBe(400);
  });

  it("answers 503 when the files cannot be built, and tries again on the next request", async () => {
    let fail = true;
    app = await bare((deps) =>
      webView(deps, {
        assets: async () => {
          if (fail) throw new Error("esbuild missing");
          return assetMap({ "index.html": "ok" });
        },
      }),
    );
    expect((await app.inject({ url: "/ui/" })).statusCode).toBe(503);
    fail = false;
    expect((await app.inject({ url: "/ui/" })).body).toBe("ok");
  });
});

describe("web view JSON routes", () => {
  it("answers an application's status: readiness, failing conditions, containers per function", async () => {
    const w = world();
    const a = w.apps.get("team/greet")!;
    a.status = {
      ...a.status,
      conditions: [
        { type: "Ready", status: "False", reason: "CodeLoadFailed", message: "ImportError: no module x" },
        { type: "CodeLoaded", status: "False", reason: "ImportError", message: "no module x" },
      ] as never,
      functions: [{ name: "hello", ready: 1, busy: 0, queued: 2, running: 0 }],
      readyContainers: 1,
    };
    app = await buildHttpApi(w.deps);
    const r = await app.inject({ url: `${BASE}/status` });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({
      name: "greet",
      ready: false,
      conditions: [
        { type: "Ready", status: "False", reason: "CodeLoadFailed", message: "ImportError: no module x" },
        { type: "CodeLoaded", status: "False" },
      ],
      functions: [{ name: "hello", ready: 1, queued: 2 }],
      ready_containers: 1,
    });
    expect((await app.inject({ url: "/v1/namespaces/team/applications/none/status" })).statusCode).toBe(404);
    expect((await app.inject({ url: "/v1/namespaces/Team!/applications/greet/status" })).statusCode).toBe(400);
  });

  it("pages an application's requests, newest first, filtered by status and creation time", async () => {
    const w = world();
    for (let i = 0; i < 7; i++) w.calls.put(call(`r${i}`, {}, { phase: i % 2 ? "Succeeded" : "Running" }));
    app = await buildHttpApi(w.deps);
    const ids = async (q: string) =>
      (await app.inject({ url: `${BASE}/requests?${q}` })).json().requests.map((r: { id: string }) => r.id);
    expect(await ids("limit=3")).toEqual(["r6", "r5", "r4"]);
    expect(await ids("limit=3&offset=3")).toEqual(["r3", "r2", "r1"]);
    expect(await ids("limit=3&offset=6")).toEqual(["r0"]);
    expect(await ids("status=success")).toEqual(["r5", "r3", "r1"]);
    expect(await ids("status=running&limit=2&offset=1")).toEqual(["r4", "r2"]);
    expect(await ids("status=failure")).toEqual([]);
    expect((await app.inject({ url: `${BASE}/requests?status=done` })).statusCode).toBe(400);
    expect((await app.inject({ url: `${BASE}/requests?offset=-1` })).statusCode).toBe(400);
    // A time window: created_after inclusive, created_before exclusive, with the other filters.
    const created = (id: string) => Date.parse(w.calls.get(`team/${id}`)!.metadata.creationTimestamp as string);
    const [t2, t5] = [created("r2"), created("r5")];
    expect(await ids(`created_after=${t2}&created_before=${t5}`)).toEqual(["r4", "r3", "r2"]);
    expect(await ids(`created_after=${t2}&status=success`)).toEqual(["r5", "r3"]);
    expect(await ids(`created_before=${t2}&limit=1&offset=1`)).toEqual(["r0"]);
    for (const q of ["created_after=-1", "created_after=soon", "created_before=1.5"])
      expect((await app.inject({ url: `${BASE}/requests?${q}` })).json().message, q).toMatch(/created_(after|before)/);
  });

  it("lists a request's calls with phases, attempts, pods, tail calls and errors", async () => {
    const w = world();
    w.calls.put(
      call("r1", {}, { phase: "Running", attempts: 1, pod: "greet-hello-1", startTime: "2026-01-01T00:00:00Z" }),
    );
    w.calls.put(call("r1-a", { parent: "r1", request: "r1", sequence: 0, function: "shout" }, { phase: "Succeeded" }));
    w.calls.put(
      call(
        "r1-b",
        { parent: "r1", request: "r1", sequence: 1, args: [{ call: "r1-a" }] as never },
        {
          phase: "Failed",
          attempts: 3,
          tailCall: "r1-a",
          error: { type: "ValueError", message: "bad", traceback: "Traceback (most recent call last):\n  x" },
        },
      ),
    );
    w.calls.put(call("other", {}, { phase: "Running" }));
    app = await buildHttpApi(w.deps);
    const r = await app.inject({ url: `${BASE}/requests/r1/calls` });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.request).toMatchObject({ id: "r1", status: "running" });
    expect(body.calls.map((c: { name: string }) => c.name)).toEqual(["r1", "r1-a", "r1-b"]);
    expect(body.calls[0]).toMatchObject({ phase: "Running", attempts: 1, pod: "greet-hello-1", parent: null });
    expect(body.calls[2]).toMatchObject({
      function: "hello",
      parent: "r1",
      attempts: 3,
      tail_call: "r1-a",
      inputs: ["r1-a"],
      error: { type: "ValueError", message: "bad", traceback: "Traceback (most recent call last):\n  x" },
    });
    expect((await app.inject({ url: `${BASE}/requests/r1-a/calls` })).statusCode).toBe(404); // not a request
    expect((await app.inject({ url: `${BASE}/requests/nope/calls` })).statusCode).toBe(404);
    expect((await app.inject({ url: `${BASE}/requests/UPPER/calls` })).statusCode).toBe(400);
  });

  it("asks RBAC to list functioncalls for the graph and get applications for the status", async () => {
    const checks: AccessCheck[] = [];
    const authorizer: Authorizer = {
      authorize: async (token, check) => {
        checks.push(check);
        return token ? { allowed: true, user: "u" } : { allowed: false, status: 401, message: "no token" };
      },
    };
    const w = world(authorizer);
    w.calls.put(call("r1"));
    app = await buildHttpApi(w.deps);
    expect((await app.inject({ url: `${BASE}/requests/r1/calls` })).statusCode).toBe(401);
    expect((await app.inject({ url: `${BASE}/requests/r1/calls/events` })).statusCode).toBe(401);
    expect((await app.inject({ url: `${BASE}/status` })).statusCode).toBe(401);
    expect((await app.inject({ url: `${BASE}/requests/r1/calls/r1/logs` })).statusCode).toBe(401);
    expect((await app.inject({ url: `${BASE}/requests/r1/calls/r1/items` })).statusCode).toBe(401);
    // The page's own files carry no data and need no token.
    expect((await app.inject({ url: "/ui/ui.css" })).statusCode).toBe(200);
    expect(checks).toEqual([
      { namespace: "team", verb: "list", resource: "functioncalls" },
      { namespace: "team", verb: "list", resource: "functioncalls" },
      { namespace: "team", verb: "get", resource: "applications" },
      { namespace: "team", verb: "get", resource: "pods/log" },
      { namespace: "team", verb: "list", resource: "functioncalls" },
    ]);
  });

  it("answers a call's worker log: 404 for a call of another request, 409 before a pod, 404 once the pod is gone", async () => {
    const w = world();
    w.calls.put(call("r1", {}, { phase: "Running", pod: "greet-hello-1" }));
    w.calls.put(call("r1-a", { parent: "r1", request: "r1", sequence: 0 }, { phase: "Running", pod: "greet-hello-2" }));
    w.calls.put(call("r1-b", { parent: "r1", request: "r1", sequence: 1 }, { phase: "Queued" }));
    w.calls.put(call("r1-c", { parent: "r1", request: "r1", sequence: 2 }, { phase: "Succeeded", pod: "gone-1" }));
    w.calls.put(call("r2", {}, { phase: "Running", pod: "greet-hello-1" }));
    w.calls.put(call("r2-a", { parent: "r2", request: "r2", sequence: 0 }, { pod: "greet-hello-1" }));
    w.podLogs.set("team/greet-hello-2", "stepping 0\nstepping 1\n");
    w.podLogs.set("team/greet-hello-1", "x".repeat(300 * 1024));
    app = await buildHttpApi(w.deps);
    const r = await app.inject({ url: `${BASE}/requests/r1/calls/r1-a/logs?tailLines=20` });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({
      call: "r1-a",
      pod: "greet-hello-2",
      container: "worker",
      tail_lines: 20,
      limit_bytes: 256 * 1024,
      text: "stepping 0\nstepping 1\n",
    });
    expect(w.logReads[0]).toEqual({ namespace: "team", pod: "greet-hello-2", tailLines: 20, limitBytes: 256 * 1024 });
    // The root is a call of its own request; an oversized log is cut to its last 256 KiB.
    const root = await app.inject({ url: `${BASE}/requests/r1/calls/r1/logs` });
    expect(root.json().text.length).toBe(256 * 1024);
    expect(w.logReads[1]!.tailLines).toBe(500);
    const other = await app.inject({ url: `${BASE}/requests/r1/calls/r2-a/logs` });
    expect(other.statusCode).toBe(404);
    expect(other.json().message).toBe("call r2-a of request r1 of application greet not found in namespace team");
    expect((await app.inject({ url: `${BASE}/requests/r1-a/calls/r1-a/logs` })).statusCode).toBe(404);
    expect(
      (await app.inject({ url: `/v1/namespaces/team/applications/nope/requests/r1/calls/r1-a/logs` })).statusCode,
    ).toBe(404);
    const queued = await app.inject({ url: `${BASE}/requests/r1/calls/r1-b/logs` });
    expect(queued.statusCode).toBe(409);
    expect(queued.json().message).toBe("call r1-b has not run on a pod yet (phase Queued): no logs");
    const gone = await app.inject({ url: `${BASE}/requests/r1/calls/r1-c/logs` });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().message).toBe("pod gone-1 that ran call r1-c is gone (pods scale to zero when idle)");
    for (const q of ["tailLines=0", "tailLines=10001", "tailLines=x", "tailLines=1.5"])
      expect((await app.inject({ url: `${BASE}/requests/r1/calls/r1-a/logs?${q}` })).statusCode, q).toBe(400);
    expect((await app.inject({ url: `${BASE}/requests/r1/calls/UPPER/logs` })).statusCode).toBe(400);
    w.calls.put(call("r1-d", { parent: "r1", request: "r1", sequence: 3 }, { phase: "Failed", pod: "starting-1" }));
    w.podLogs.set("team/starting-1", { waiting: 'container "worker" in pod "starting-1" is waiting to start' });
    const waiting = await app.inject({ url: `${BASE}/requests/r1/calls/r1-d/logs` });
    expect(waiting.statusCode).toBe(409);
    expect(waiting.json().message).toMatch(/^the worker container of pod starting-1 has not started yet .*try again/);
    w.deps.podLog = async () => {
      throw new Error("connection reset");
    };
    const broken = await app.inject({ url: `${BASE}/requests/r1/calls/r1-a/logs` });
    expect(broken.statusCode).toBe(502);
    expect(broken.json().message).toBe("cannot read the log of pod greet-hello-2 that ran call r1-a: connection reset");
  });

  it("pages a map's items in order with phase, attempts, pod and error", async () => {
    const w = world();
    w.calls.put(call("m", {}, { phase: "Running" }));
    w.calls.put(call("m-map", { parent: "m", request: "m", sequence: 0, map: { items: [] } as never }, {}));
    for (let i = 119; i >= 0; i--)
      w.calls.put(
        call(
          `m-map-${i}`,
          { parent: "m-map", request: "m", sequence: i },
          i === 7
            ? { phase: "Failed", attempts: 2, pod: "p7", error: { type: "ValueError", message: "seven" } }
            : { phase: "Succeeded", attempts: 1, pod: `p${i}` },
        ),
      );
    app = await buildHttpApi(w.deps);
    const first = (await app.inject({ url: `${BASE}/requests/m/calls/m-map/items` })).json();
    expect(first).toMatchObject({ call: "m-map", total: 120, offset: 0, limit: 50 });
    expect(first.items).toHaveLength(50);
    expect(first.items[0]).toMatchObject({ index: 0, name: "m-map-0", phase: "Succeeded", attempts: 1, pod: "p0" });
    expect(first.items[7]).toMatchObject({
      index: 7,
      phase: "Failed",
      error: { type: "ValueError", message: "seven" },
    });
    const last = (await app.inject({ url: `${BASE}/requests/m/calls/m-map/items?offset=100&limit=50` })).json();
    expect(last.items.map((i: { index: number }) => i.index)).toEqual([...Array(20).keys()].map((k) => k + 100));
    expect((await app.inject({ url: `${BASE}/requests/m/calls/m-map-3/items` })).json().total).toBe(0);
    expect((await app.inject({ url: `${BASE}/requests/m/calls/nope/items` })).statusCode).toBe(404);
    for (const q of ["limit=0", "limit=201", "offset=-1", "offset=x"])
      expect((await app.inject({ url: `${BASE}/requests/m/calls/m-map/items?${q}` })).statusCode, q).toBe(400);
  });

  it("streams the graph as its calls change, then the outcome", async () => {
    const w = world();
    w.calls.put(call("r1", {}, { phase: "Running" }));
    app = await buildHttpApi(w.deps);
    await app.listen({ host: "127.0.0.1", port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const res = await fetch(`http://127.0.0.1:${port}${BASE}/requests/r1/calls/events`);
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
    await readUntil("event: graph");
    // A child appears and changes: the request's watchers hear of it though the root did not change.
    const child = call("r1-a", { parent: "r1", request: "r1", sequence: 0, function: "shout" }, { phase: "Running" });
    w.calls.put(child);
    w.update("r1-a", { phase: "Running" });
    await readUntil('"name":"r1-a"');
    w.update("r1-a", { phase: "Succeeded" });
    await readUntil('"phase":"Succeeded"');
    w.update("r1", { phase: "Succeeded", output: { value: 1 } });
    await readUntil("event: completed");
    await readUntil("\n\n");
    expect(text).toMatch(/event: completed\ndata: \{[^\n]*"outcome":"success"/);
  });
});

describe("requestGraph", () => {
  it("folds map items into counts, keeps a few failed items and hides what items called", () => {
    const root = call("r", {}, { phase: "Running" });
    const map = call("r-m", {
      parent: "r",
      request: "r",
      sequence: 0,
      map: { items: [] } as never,
      function: "double",
    });
    const items = Array.from({ length: 50 }, (_, i) =>
      call(
        `r-i${i}`,
        { parent: "r-m", request: "r", sequence: i, function: "double" },
        { phase: i < 5 ? "Failed" : i < 20 ? "Running" : "Succeeded" },
      ),
    );
    const grandchild = call("r-g", { parent: "r-i30", request: "r", sequence: 0 }, { phase: "Succeeded" });
    const g = requestGraph([root, map, ...items, grandchild]);
    const m = g.calls.find((c) => c.name === "r-m")!;
    expect(m.kind).toBe("map");
    expect(m.items).toEqual({ total: 50, phases: { Failed: 5, Running: 15, Succeeded: 30 } });
    expect(g.calls.filter((c) => c.parent === "r-m").length).toBe(MAX_FAILED_ITEMS);
    expect(g.calls.some((c) => c.name === "r-g")).toBe(false);
    expect(g.hidden).toBe(50 - MAX_FAILED_ITEMS + 1);
  });

  it("does not loop on calls that name each other as parents", () => {
    const a = call("a", { parent: "b", request: "r", sequence: 0 });
    const b = call("b", { parent: "a", request: "r", sequence: 0 });
    expect(requestGraph([a, b]).calls.length).toBe(2);
  });
});
