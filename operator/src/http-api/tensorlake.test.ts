// The v1 routes in the shapes Tensorlake's own client (tensorlake 0.5.x, CloudApiClient) reads:
// ApplicationManifest, invoke inputs (raw bodies, numbered multipart parts), RequestMetadata,
// outputs by content type, and SSE whose every data is a JSON object ending with RequestFinished.
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { ANNOTATION } from "../../../protocol/index.js";
import { world } from "./fakes.js";
import { buildHttpApi } from "./index.js";
import { accepts } from "./routes/requests.js";
import { anyTypeHintPickle, encodeBytesB64, inputManifestsPickle } from "./tensorlake-pickle.js";
import type { ApplicationObj } from "./types.js";

const BASE = "/v1/namespaces/team/applications/greet";
let app: FastifyInstance;
afterEach(async () => app?.close());

async function form(parts: [string, string | Blob, string?][]) {
  const f = new FormData();
  for (const [name, v, filename] of parts) {
    if (typeof v === "string") f.append(name, v);
    else f.append(name, v, filename);
  }
  const req = new Request("http://x", { method: "POST", body: f });
  return {
    payload: Buffer.from(await req.arrayBuffer()),
    headers: { "content-type": req.headers.get("content-type")! },
  };
}

function withApp(patch: (a: ApplicationObj) => ApplicationObj) {
  const w = world();
  w.apps.put(patch(w.apps.get("team/greet")!));
  return w;
}

describe("application manifest", () => {
  it("is made from the Application when no Tensorlake manifest was stored", async () => {
    const w = withApp((a) => ({
      ...a,
      metadata: { ...a.metadata, generation: 3 },
      spec: {
        ...a.spec,
        functions: [
          {
            name: "shout",
            resources: { cpu: "500m", memory: "256Mi", gpu: 1 },
            timeoutSeconds: 30,
            retries: { maxRetries: 2, initialDelaySeconds: 1, maxDelaySeconds: 8, delayMultiplier: 2 },
          },
        ],
      },
    }));
    app = await buildHttpApi(w.deps);
    const m = (await app.inject({ url: BASE })).json();
    expect(m).toMatchObject({ name: "greet", description: "", tags: {}, version: "3", runtime: "python" });
    expect(Object.keys(m.functions)).toEqual(["hello", "shout"]);
    expect(m.functions.shout).toEqual({
      name: "shout",
      description: "",
      docstring: "",
      secret_names: [],
      initialization_timeout_sec: 30,
      timeout_sec: 30,
      resources: { cpus: 0.5, memory_mb: 256, ephemeral_disk_mb: 2048, gpus: [{ count: 1, model: "nvidia.com/gpu" }] },
      retry_policy: { max_retries: 2, initial_delay_sec: 1, max_delay_sec: 8, delay_multiplier: 2 },
      cache_key: null,
      parameters: [],
      return_type: null,
      placement_constraints: { filter_expressions: [] },
      max_concurrency: 1,
      min_containers: null,
      max_containers: null,
    });
    expect(m.functions.hello.resources).toEqual({ cpus: 1, memory_mb: 1024, ephemeral_disk_mb: 2048, gpus: [] });
    expect(m.entrypoint).toEqual({
      function_name: "hello",
      input_serializer: "json",
      inputs_base64: encodeBytesB64(inputManifestsPickle([])),
      output_serializer: "json",
      output_type_hints_base64: encodeBytesB64(anyTypeHintPickle()),
    });
  });

  it("takes the entrypoint's parameters and pickles from the discovered function table", async () => {
    const w = withApp((a) => ({
      ...a,
      status: {
        ...a.status,
        discovered: [{ name: "hello", parameters: ["who", { name: "times" }] } as never, { name: "shout" }],
      },
    }));
    app = await buildHttpApi(w.deps);
    const m = (await app.inject({ url: BASE })).json();
    expect(m.entrypoint.inputs_base64).toBe(encodeBytesB64(inputManifestsPickle(["who", "times"])));
    w.apps.put({
      ...w.apps.get("team/greet")!,
      status: {
        discovered: [
          { name: "hello", tensorlake: { inputs_base64: "SU4=\n", output_type_hints_base64: "T1VU\n" } } as never,
        ],
      },
    });
    const again = (await app.inject({ url: BASE })).json();
    expect(again.entrypoint).toMatchObject({ inputs_base64: "SU4=\n", output_type_hints_base64: "T1VU\n" });
  });

  it("answers a stored Tensorlake manifest verbatim, also under its Tensorlake name", async () => {
    const stored = '{"name":"hello_world","version":"v7","tags":{"team":"a"},"description":"d","extra":1}';
    const w = withApp((a) => ({
      ...a,
      metadata: {
        ...a.metadata,
        annotations: { [ANNOTATION.tensorlakeManifest]: stored, [ANNOTATION.tensorlakeName]: "hello_world" },
      },
    }));
    app = await buildHttpApi(w.deps);
    for (const url of [BASE, "/v1/namespaces/team/applications/hello_world"]) {
      const r = await app.inject({ url });
      expect(r.body).toBe(stored);
      expect(r.headers["content-type"]).toMatch(/^application\/json/);
    }
    const list = (await app.inject({ url: "/v1/namespaces/team/applications" })).json().applications;
    expect(list[0]).toMatchObject({ name: "hello_world", version: "v7", tags: { team: "a" }, description: "d" });
  });
});

describe("the manifest's pickles", () => {
  it("unpickle in Python to EntryPointInputManifest models and typing.Any", () => {
    // A stand-in of Tensorlake's module with the same pydantic model (the wheel is not installed offline).
    const dir = mkdtempSync(join(tmpdir(), "tl-pickle-"));
    const pkg = join(dir, "tensorlake/applications/remote/manifests");
    mkdirSync(pkg, { recursive: true });
    for (const d of ["tensorlake", "tensorlake/applications", "tensorlake/applications/remote", pkg])
      writeFileSync(join(d.startsWith("/") ? d : join(dir, d), "__init__.py"), "");
    writeFileSync(
      join(pkg, "application.py"),
      "from typing import Any\nfrom pydantic import BaseModel\n\nclass EntryPointInputManifest(BaseModel):\n    arg_name: str\n    type_hint: Any\n",
    );
    const script = `
import base64, pickle, sys, typing
from tensorlake.applications.remote.manifests.application import EntryPointInputManifest as M
got = pickle.loads(base64.decodebytes(sys.argv[1].encode()))
assert got == [M(arg_name="who", type_hint=typing.Any), M(arg_name="times", type_hint=typing.Any)], got
assert got[1].model_fields_set == {"arg_name", "type_hint"}
assert pickle.loads(base64.decodebytes(sys.argv[2].encode())) is typing.Any
assert pickle.loads(base64.decodebytes(sys.argv[3].encode())) == []
print("ok")
`;
    const out = execFileSync(
      "python3",
      [
        "-c",
        script,
        encodeBytesB64(inputManifestsPickle(["who", "times"])),
        encodeBytesB64(anyTypeHintPickle()),
        encodeBytesB64(inputManifestsPickle([])),
      ],
      { env: { ...process.env, PYTHONPATH: dir }, encoding: "utf8" },
    );
    expect(out.trim()).toBe("ok");
  });
});

describe("invoke inputs in Tensorlake's forms", () => {
  const created = async (w: ReturnType<typeof world>, r: { statusCode: number; json(): { request_id: string } }) => {
    expect(r.statusCode).toBe(201);
    return w.calls.get(`team/${r.json().request_id}`)!.spec;
  };

  it("takes no body as no arguments, JSON with a charset, and any other body as one raw argument", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const none = await app.inject({ method: "POST", url: BASE, headers: { accept: "application/json" } });
    const empty = await created(w, none);
    expect([empty.args ?? [], empty.kwargs ?? {}]).toEqual([[], {}]);
    const json = await app.inject({
      method: "POST",
      url: BASE,
      payload: '{"a":1}',
      headers: { "content-type": "application/json; charset=UTF-8" },
    });
    expect((await created(w, json)).args).toEqual([{ value: { a: 1 } }]);
    const pdf = await app.inject({
      method: "POST",
      url: BASE,
      payload: Buffer.from([0x25, 0x50, 0x44, 0x46, 0xff]),
      headers: { "content-type": "application/pdf" },
    });
    expect((await created(w, pdf)).args).toEqual([{ raw: { contentType: "application/pdf", data: "JVBERv8=" } }]);
    const text = await app.inject({
      method: "POST",
      url: BASE,
      payload: "hi",
      headers: { "content-type": "text/plain" },
    });
    expect((await created(w, text)).args).toEqual([{ raw: { contentType: "text/plain", data: "aGk=" } }]);
  });

  it("takes numbered multipart parts as positional arguments and named ones as keywords, by content type", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const body = await form([
      ["1", new Blob(["[2]"], { type: "application/json; charset=UTF-8" }), "1"],
      ["0", new Blob(['"one"'], { type: "application/json" }), "0"],
      ["doc", new Blob(["PDF!"], { type: "application/pdf" }), "doc"],
      ["flag", "true"],
    ]);
    const spec = await created(w, await app.inject({ method: "POST", url: BASE, ...body }));
    expect(spec.args).toEqual([{ value: "one" }, { value: [2] }]);
    expect(spec.kwargs).toEqual({
      doc: { raw: { contentType: "application/pdf", data: Buffer.from("PDF!").toString("base64") } },
      flag: { value: true },
    });
  });

  it("refuses gaps in numbered parts, mixing them with args, bad JSON parts and pickled parts", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const send = async (parts: [string, string | Blob, string?][]) =>
      app.inject({ method: "POST", url: BASE, ...(await form(parts)) });
    const gap = await send([["1", "2"]]);
    expect(gap.statusCode).toBe(400);
    expect(gap.json().message).toBe("part 0: missing; positional parts are numbered 0, 1, … in order");
    const mixed = await send([
      ["args", "[1]"],
      ["0", "2"],
    ]);
    expect(mixed.json().message).toBe("part 0: numbered parts cannot be combined with a part args");
    const badJson = await send([["0", new Blob(["{"], { type: "application/json" }), "0"]]);
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json().message).toMatch(/^part 0: content type application\/json but not JSON/);
    const pickled = await send([["0", new Blob(["x"], { type: "application/python-pickle" }), "0"]]);
    expect(pickled.statusCode).toBe(415);
    expect(w.calls.m.size).toBe(0);
  });

  it("puts a large raw input in the blob store as a {raw} document", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const data = Buffer.alloc(100_000, 7);
    const r = await app.inject({
      method: "POST",
      url: BASE,
      payload: data,
      headers: { "content-type": "application/octet-stream" },
    });
    const ref = (await created(w, r)).args?.[0]?.blob as string;
    expect(JSON.parse(w.blobs.get(ref)!.toString())).toEqual({
      raw: { contentType: "application/octet-stream", data: data.toString("base64") },
    });
  });

  it("answers 424 with the CodeLoaded message when the code failed to load, and creates nothing", async () => {
    const w = withApp((a) => ({
      ...a,
      status: {
        conditions: [
          { type: "CodeLoaded", status: "False", reason: "ImportError", message: "app.py: No module named 'numpy'" },
        ],
      },
    }));
    app = await buildHttpApi(w.deps);
    const r = await app.inject({ method: "POST", url: BASE, payload: { a: 1 } });
    expect(r.statusCode).toBe(424);
    expect(r.json()).toEqual({ code: "code_load_failed", message: "app.py: No module named 'numpy'" });
    expect(w.calls.m.size).toBe(0);
    // After a new spec (generation 2) the old failure no longer refuses requests.
    const a = w.apps.get("team/greet")!;
    w.apps.put({
      ...a,
      metadata: { ...a.metadata, generation: 2 },
      status: { conditions: [{ ...a.status!.conditions![0]!, observedGeneration: 1 }] },
    });
    expect((await app.inject({ method: "POST", url: BASE, payload: { a: 1 } })).statusCode).toBe(201);
  });

  it("tells the caller of a request accepted before the code failed to load why it waits", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const r = await app.inject({ method: "POST", url: BASE, payload: { a: 1 } });
    const id = r.json().request_id as string;
    expect((await app.inject({ url: `${BASE}/requests/${id}` })).json().waiting).toBeNull();
    const a = w.apps.get("team/greet")!;
    const failed = {
      type: "CodeLoaded",
      status: "False" as const,
      reason: "CodeLoadFailed",
      message: "No module named 'numpy'",
    };
    w.apps.put({ ...a, status: { conditions: [failed] } });
    expect((await app.inject({ url: `${BASE}/requests/${id}` })).json().waiting).toEqual({
      reason: "code_load_failed",
      message: "No module named 'numpy'",
    });
  });
});

describe("request metadata, outputs and events", () => {
  const invoke = async () =>
    (
      await app.inject({ method: "POST", url: BASE, payload: "1", headers: { "content-type": "application/json" } })
    ).json().request_id as string;

  it("answers RequestMetadata: integer created_at, application_version, the request_error's function", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const id = await invoke();
    const pending = (await app.inject({ url: `${BASE}/requests/${id}` })).json();
    expect(pending).toMatchObject({
      id,
      outcome: null,
      application_version: "1",
      created_at: 1000,
      request_error: null,
    });
    w.calls.put({
      ...w.calls.get(`team/${id}`)!,
      metadata: { name: `${id}-1`, namespace: "team" },
      spec: {
        ...w.calls.get(`team/${id}`)!.spec,
        function: "shout",
        parent: id,
      },
    });
    w.update(id, {
      phase: "Failed",
      completionTime: "2026-01-01T00:00:05Z",
      error: { type: "RequestError", message: "too loud", reason: "request_error", cause: `${id}-1` },
    });
    const failed = (await app.inject({ url: `${BASE}/requests/${id}` })).json();
    expect(failed).toMatchObject({
      outcome: { failure: "request_error" },
      request_error: { function_name: "shout", message: "too loud" },
      finished_at: Date.parse("2026-01-01T00:00:05Z"),
    });
    w.update(id, { error: { type: "RequestError", message: "own", reason: "request_error" } });
    expect((await app.inject({ url: `${BASE}/requests/${id}` })).json().request_error).toEqual({
      function_name: "hello",
      message: "own",
    });
  });

  it("serves JSON as application/json and raw outputs (inline or blob) with their own content type", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    const id = await invoke();
    const out = () => app.inject({ url: `${BASE}/requests/${id}/output` });
    w.update(id, { phase: "Succeeded", output: { value: { a: 1 } } });
    const json = await out();
    expect(json.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(json.body).toBe('{"a":1}');
    w.update(id, { phase: "Succeeded", output: { raw: { contentType: "image/png", data: "iVBO" } } });
    const png = await out();
    expect(png.headers["content-type"]).toBe("image/png");
    expect(png.rawPayload).toEqual(Buffer.from("iVBO", "base64"));
    w.blobs.set(`team/${id}/2`, Buffer.from(JSON.stringify({ raw: { contentType: "text/csv", data: "YSxi" } })));
    w.update(id, { phase: "Succeeded", output: { blob: `team/${id}/2` } });
    const csv = await out();
    expect(csv.headers["content-type"]).toBe("text/csv");
    expect(csv.body).toBe("a,b");
    w.update(id, { phase: "Succeeded", output: { list: [{ value: 1 }, { raw: { contentType: "a/b", data: "" } }] } });
    expect((await out()).statusCode).toBe(406);
  });

  it("streams JSON-object events ending with RequestFinished, at once for a finished request", async () => {
    const w = world();
    app = await buildHttpApi(w.deps);
    await app.listen({ host: "127.0.0.1", port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}${BASE}`;
    const id = await invoke();
    const res = await fetch(`${url}/requests/${id}/progress`);
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
    w.update(id, { phase: "Running", progress: { current: 1, total: 4, message: "a quarter" } });
    await readUntil("RequestProgressUpdated\ndata");
    w.update(id, { phase: "Succeeded", output: { value: 3 } });
    await readUntil("event: completed");
    await readUntil("\n\n");
    const data = text
      .split("\n")
      .filter((l) => l.startsWith("data: "))
      .map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>);
    for (const d of data) expect(d !== null && typeof d === "object" && !Array.isArray(d)).toBe(true);
    expect(data.find((d) => "RequestProgressUpdated" in d)).toEqual({
      RequestProgressUpdated: { request_id: id, function_name: "hello", current: 1, total: 4, message: "a quarter" },
    });
    expect(data.filter((d) => "RequestFinished" in d)).toEqual([
      { RequestFinished: { request_id: id, outcome: "success", application_version: "1", request_error: null } },
    ]);
    const again = await (await fetch(`${url}/requests/${id}/progress`)).text();
    expect(again).toContain(
      `event: RequestFinished\ndata: {"RequestFinished":{"request_id":"${id}","outcome":"success"`,
    );
  });

  it("reads Accept headers as HTTP does", () => {
    const P = "application/python-pickle";
    expect(accepts(undefined, P)).toBe(true);
    expect(accepts("*/*", P)).toBe(true);
    expect(accepts("application/json", P)).toBe(false);
    expect(accepts("application/*;q=0.5, application/python-pickle;q=0", P)).toBe(false);
    expect(accepts("text/*, application/*", P)).toBe(true);
  });
});
