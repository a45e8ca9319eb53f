// The HTTP invoke API on the local cluster: an operator from the source tree with Kubernetes auth
// (TokenReview + SubjectAccessReview), requests invoked with tokens of ServiceAccounts that RBAC
// allows or not, outputs, SSE progress, deletion, the Python SDK's run_remote_application, and the
// shapes Tensorlake's own client reads (manifest, numbered multipart inputs, RequestMetadata,
// RequestFinished, 424 for code that fails to load).
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace, kubectl, repoRoot, serviceAccountToken, waitFor } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { deployApp, requestCalls } from "./support/trellis.js";

const API = `http://127.0.0.1:${process.env.TRELLIS_E2E_HTTP_PORT ?? 18080}`;
const SOURCE = `
from tensorlake.applications import RequestContext, RequestError, application, function


@function()
def square(x: int) -> int:
    return x * x


@application()
@function()
def work(n: int, scale: int = 1) -> dict:
    ctx = RequestContext.get()
    ctx.progress.update(1, 2, "halfway")
    if n < 0:
        raise RequestError("n must be >= 0")
    return {"n": n, "square": square(n) * scale, "trace": ctx.headers.get("x-trellis-trace") or ""}


@application()
@function()
def boxed(n: int) -> int:
    # Beyond 2**53 a JSON peer would change the number: the boundary keeps it as a pickle.
    return 2**60 + n
`;
const BROKEN = "import trellis_no_such_module\n";
// Shipped by the Python SDK's deploy_applications (code.zip + Tensorlake's manifest), not kubectl.
const DEPLOYED = `
from tensorlake.applications import application, function


@function()
def inc(x: int) -> int:
    return x + 1


@application()
@function()
def deployed(n: int) -> int:
    return inc(n) * 10
`;

let op: OperatorProcess;
let ns = "";
const tokens: Record<string, string> = {};

/** A token allowed `verbs` on `resources` (trellis.dev ones by name, configmaps in core). */
const serviceAccount = (name: string, verbs: string[], resources = ["functioncalls"]) =>
  serviceAccountToken(
    ns,
    name,
    resources.map((r) => ({ verbs: verbs.join(","), resource: r === "configmaps" ? r : `${r}.trellis.dev` })),
  );

const api = (path: string, init: RequestInit & { token?: string } = {}) =>
  fetch(`${API}${path}`, {
    ...init,
    headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.headers ?? {}) },
  });
const post = (app: string, body: unknown, token: string, headers: Record<string, string> = {}) =>
  api(`/v1/namespaces/${ns}/applications/${app}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
    token,
  });

async function finished(app: string, id: string, token: string) {
  return waitFor(
    `request ${id} to finish`,
    async () => {
      const r = await (await api(`/v1/namespaces/${ns}/applications/${app}/requests/${id}`, { token })).json();
      return r.outcome === null ? undefined : r;
    },
    120_000,
  );
}

beforeAll(async () => {
  op = await startOperator("http-api");
  ns = await createNamespace("http");
  await deployApp(ns, "work", SOURCE, "work");
  await deployApp(ns, "boxed", SOURCE, "boxed");
  tokens.invoker = await serviceAccount("invoker", ["create", "get", "list", "delete"]);
  tokens.reader = await serviceAccount("reader", ["get", "list"]);
  tokens.tensorlake = await serviceAccount("tensorlake", ["create", "get", "list"], ["functioncalls", "applications"]);
  // What the deploy route checks (applications and their code ConfigMaps), plus invoking.
  tokens.deployer = await serviceAccount(
    "deployer",
    ["create", "get", "patch", "delete"],
    ["functioncalls", "applications", "configmaps"],
  );
});
afterAll(async () => {
  await deleteNamespace(ns);
  await op?.stop();
});

describe("HTTP invoke API on the cluster", () => {
  it("lets RBAC decide: no token 401, a reader may not invoke (403), an invoker may", async () => {
    expect((await post("work", 2, "")).status).toBe(401);
    const denied = await post("work", 2, tokens.reader!);
    expect(denied.status).toBe(403);
    expect((await denied.json()).message).toContain(`system:serviceaccount:${ns}:reader may not create`);
    // A token for the API server's own audience is refused: the API takes tokens minted for "trellis".
    const apiServerToken = (await kubectl(["create", "token", "invoker", "-n", ns, "--duration=1h"])).trim();
    const wrongAudience = await post("work", 2, apiServerToken);
    expect(wrongAudience.status).toBe(401);
    expect((await wrongAudience.json()).message).toMatch(/audience trellis/);
    const ok = await post("work", 3, tokens.invoker!, {
      "x-trellis-trace": "abc",
      "x-api-key": "k3y",
      cookie: "session=s3cret",
      "x-request-id": "rid-1",
    });
    expect(ok.status).toBe(201);
    const { request_id } = await ok.json();
    // Only allowlisted headers reach the root call; credentials never do.
    const root = JSON.parse(await kubectl(["get", "functioncall", request_id, "-n", ns, "-o", "json"])) as {
      spec: { headers?: Record<string, string> };
    };
    expect(root.spec.headers).toMatchObject({ "x-trellis-trace": "abc", "x-request-id": "rid-1" });
    for (const h of ["authorization", "x-api-key", "cookie"]) expect(root.spec.headers).not.toHaveProperty(h);
    const r = await finished("work", request_id, tokens.reader!);
    expect(r).toMatchObject({ id: request_id, status: "success", outcome: "success", request_error: null });
    const out = await api(`/v1/namespaces/${ns}/applications/work/requests/${request_id}/output`, {
      token: tokens.reader!,
    });
    expect(await out.json()).toEqual({ n: 3, square: 9, trace: "abc" });
    const calls = await requestCalls(ns, request_id);
    expect(calls.map((c) => c.fn).sort()).toEqual(["square", "work"]);
    const list = await (await api(`/v1/namespaces/${ns}/applications/work/requests`, { token: tokens.reader! })).json();
    expect(list.requests[0].id).toBe(request_id);
  });

  it("reports a RequestError with its message, and an Idempotency-Key retry returns the same request", async () => {
    const send = () => post("work", -1, tokens.invoker!, { "idempotency-key": "once" });
    const a = await send();
    const b = await send();
    expect(a.status).toBe(201);
    expect(b.status).toBe(200);
    const id = (await a.json()).request_id;
    expect((await b.json()).request_id).toBe(id);
    const other = await post("work", -2, tokens.invoker!, { "idempotency-key": "once" });
    expect(other.status).toBe(422);
    expect((await other.json()).message).toMatch(
      /^header Idempotency-Key: already used for request .* different inputs/,
    );
    const r = await finished("work", id, tokens.invoker!);
    expect(r).toMatchObject({
      status: "failure",
      outcome: { failure: "request_error" },
      request_error: { message: "n must be >= 0" },
    });
  });

  it("streams progress then the outcome with Accept: text/event-stream", async () => {
    const res = await post("work", 4, tokens.invoker!, { accept: "text/event-stream" });
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const text = await res.text(); // the server ends the stream after "completed"
    expect(text).toMatch(/^event: request_created\ndata: \{"request_id":"work-/);
    const events = text
      .trim()
      .split("\n\n")
      .map((e) => e.split("\n"))
      .map(([ev, data]) => ({ event: ev!.slice(7), data: JSON.parse(data!.slice(6)) }));
    expect(events.find((e) => e.event === "progress")?.data).toEqual({ current: 1, total: 2, message: "halfway" });
    // Tensorlake's client parses every data as JSON and stops at the first RequestFinished.
    for (const e of events) expect(e.data).toBeTypeOf("object");
    const id = events[0]!.data.request_id;
    expect(events.find((e) => e.event === "RequestProgressUpdated")?.data).toEqual({
      RequestProgressUpdated: { request_id: id, function_name: "work", current: 1, total: 2, message: "halfway" },
    });
    expect(events.at(-2)?.data).toMatchObject({ RequestFinished: { request_id: id, outcome: "success" } });
    expect(events.at(-1)?.event).toBe("completed");
    expect(text).toMatch(/event: completed\ndata: \{[^\n]*"outcome":"success"/);
  });

  it("serves a pickled output only to a client whose Accept admits it", async () => {
    const id = (await (await post("boxed", 5, tokens.invoker!)).json()).request_id;
    await finished("boxed", id, tokens.invoker!);
    const path = `/v1/namespaces/${ns}/applications/boxed/requests/${id}/output`;
    const refused = await api(path, { token: tokens.invoker!, headers: { accept: "application/json" } });
    expect(refused.status).toBe(406);
    for (const accept of ["application/python-pickle", "*/*"]) {
      const asked = await api(path, { token: tokens.invoker!, headers: { accept } });
      expect(asked.headers.get("content-type")).toBe("application/python-pickle");
      expect(Buffer.from(await asked.arrayBuffer())[0]).toBe(0x80); // a pickle's PROTO opcode
    }
  });

  it("deletes a request with its graph", async () => {
    const id = (await (await post("work", 6, tokens.invoker!)).json()).request_id;
    await finished("work", id, tokens.invoker!);
    const del = await api(`/v1/namespaces/${ns}/applications/work/requests/${id}`, {
      method: "DELETE",
      token: tokens.invoker!,
    });
    expect(await del.json()).toEqual({ id, deleted: true });
    await waitFor(`request ${id}'s calls to go`, async () =>
      (await requestCalls(ns, id)).length === 0 ? true : undefined,
    );
  });

  it("lists applications and refuses bad input with a message naming the problem", async () => {
    // The invoker's Role covers functioncalls only: applications need their own grant.
    expect((await api(`/v1/namespaces/${ns}/applications`, { token: tokens.invoker! })).status).toBe(403);
    const bad = await api(`/v1/namespaces/${ns}/applications/work`, {
      method: "POST",
      body: JSON.stringify({ x: { pickle: "gAM=" } }),
      headers: { "content-type": "application/json" },
      token: tokens.invoker!,
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).message).toBe("body.x.pickle: pickled values are not accepted over HTTP; send JSON");
    const doc = await (await api("/openapi.json")).json();
    expect(Object.keys(doc.paths)).toContain(
      "/v1/namespaces/{namespace}/applications/{application}/requests/{request}/output",
    );
  });

  it("answers Tensorlake's shapes: manifest, numbered multipart inputs, RequestMetadata", async () => {
    const token = tokens.tensorlake!;
    const manifest = await (await api(`/v1/namespaces/${ns}/applications/work`, { token })).json();
    expect(manifest).toMatchObject({ name: "work", runtime: "python", entrypoint: { function_name: "work" } });
    expect(Object.keys(manifest.functions).sort()).toEqual(["boxed", "square", "work"]); // one source, two apps
    const list = await (await api(`/v1/namespaces/${ns}/applications`, { token })).json();
    expect(list.applications.find((a: { name: string }) => a.name === "work")).toMatchObject({
      tombstoned: false,
      version: manifest.version,
      created_at: expect.any(Number),
    });
    // What CloudApiClient.run_request sends for work(5, scale=3).
    const form = new FormData();
    form.append("0", new Blob(["5"], { type: "application/json; charset=UTF-8" }), "0");
    form.append("scale", new Blob(["3"], { type: "application/json; charset=UTF-8" }), "scale");
    const made = await api(`/v1/namespaces/${ns}/applications/work`, {
      method: "POST",
      body: form,
      headers: { accept: "application/json" },
      token,
    });
    expect(made.status).toBe(201);
    const { request_id } = await made.json();
    const meta = await finished("work", request_id, token);
    expect(meta).toMatchObject({ id: request_id, outcome: "success", application_version: manifest.version });
    expect(meta.created_at).toBeTypeOf("number");
    const out = await api(`/v1/namespaces/${ns}/applications/work/requests/${request_id}/output`, { token });
    expect(out.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await out.json()).toMatchObject({ n: 5, square: 75 });
  });

  it("answers 424 code_load_failed once the application's code failed to load", async () => {
    await deployApp(ns, "broken", BROKEN, "main");
    await waitFor(
      "broken's CodeLoaded=False",
      async () => {
        const out = await kubectl(["get", "application", "broken", "-n", ns, "-o", "jsonpath={.status.conditions}"]);
        const c = (out ? (JSON.parse(out) as { type: string; status: string }[]) : []).find(
          (x) => x.type === "CodeLoaded",
        );
        return c?.status === "False" ? c : undefined;
      },
      120_000,
    );
    const r = await post("broken", 1, tokens.invoker!);
    expect(r.status).toBe(424);
    const body = await r.json();
    expect(body.code).toBe("code_load_failed");
    expect(body.message).toContain("trellis_no_such_module");
  });

  it("runs an application with the Python SDK's run_remote_application", async () => {
    const script = `
from tensorlake.applications import run_remote_application
r = run_remote_application("work", 7, scale=2, url="${API}", namespace="${ns}", token="${tokens.invoker}")
print(r.output(timeout=120))
r = run_remote_application("boxed", 8, url="${API}", namespace="${ns}", token="${tokens.invoker}")
print(r.output(timeout=120))
`;
    const { stdout } = await promisify(execFile)("python3", ["-c", script], {
      env: { ...process.env, PYTHONPATH: join(repoRoot, "runtime-image/python") },
    });
    // The second output travels as a pickle (beyond 2**53) and the Python client unpickles it.
    expect(stdout.trim().split("\n")).toEqual(["{'n': 7, 'square': 98, 'trace': ''}", String(2n ** 60n + 8n)]);
  });

  it("deploys a file with the Python SDK's deploy_applications, then runs it", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "trellis-deploy-")), "deployed_app.py");
    writeFileSync(file, DEPLOYED);
    // Tensorlake's variable names only: ours would take precedence in run_remote_application.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(
        ([k]) => !["TRELLIS_API_URL", "TRELLIS_NAMESPACE", "TRELLIS_TOKEN"].includes(k),
      ),
    );
    const python = (script: string) =>
      promisify(execFile)("python3", ["-c", script], {
        env: {
          ...env,
          PYTHONPATH: join(repoRoot, "runtime-image/python"),
          TENSORLAKE_API_URL: API,
          INDEXIFY_NAMESPACE: ns,
          TENSORLAKE_API_KEY: tokens.deployer!,
        },
      });
    await python(`from tensorlake.applications.remote.deploy import deploy_applications
deploy_applications(${JSON.stringify(file)}, load_source_dir_modules=True)`);
    await waitFor(
      "the deployed Application to be Ready",
      async () => {
        const out = await kubectl(["get", "application", "deployed", "-n", ns, "-o", "jsonpath={.status.conditions}"]);
        const ready = (out ? (JSON.parse(out) as { type: string; status: string }[]) : []).find(
          (c) => c.type === "Ready",
        );
        return ready?.status === "True" ? true : undefined;
      },
      120_000,
    );
    const { stdout } = await python(`from tensorlake.applications import run_remote_application
print(run_remote_application("deployed", 4).output(timeout=120))`);
    expect(stdout.trim()).toBe("50");
  });
});
