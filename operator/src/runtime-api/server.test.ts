import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { childName, RUNTIME_API_PREFIX } from "../../../protocol/index.js";
import { useFakeClock } from "../dispatch/testing.js";
import { type Harness, KEY, harness } from "../functioncall/test-harness.js";
import { FileBlobStore } from "../blobs/index.js";
import { podToken } from "./credentials.js";

let h: Harness;
afterEach(async () => {
  await h?.close();
  vi.useRealTimers();
});

async function running(pod = "pf", fn = "f", root = "r") {
  h.pods.set(pod, fn);
  await h.createRoot(root);
  const r = await h.req(pod, "POST", "/lease", { capacity: 1, waitMs: 2000 });
  return r.json().assignments[0];
}

describe("runtime API: authentication", () => {
  const inject = (headers: Record<string, string>) =>
    h.runtimeApi.inject({
      method: "POST",
      url: `${RUNTIME_API_PREFIX}/heartbeat`,
      headers,
      payload: { calls: [] },
    });
  const cases: { name: string; headers: () => Record<string, string>; status: number; code: string; msg: RegExp }[] = [
    {
      name: "no pod header",
      headers: () => ({}),
      status: 401,
      code: "unauthenticated",
      msg: /x-trellis-pod: required/,
    },
    {
      name: "malformed pod header",
      headers: () => ({ "x-trellis-pod": "nope" }),
      status: 401,
      code: "unauthenticated",
      msg: /namespace>\/<pod name/,
    },
    {
      name: "no token",
      headers: () => ({ "x-trellis-pod": "ns/p1" }),
      status: 401,
      code: "unauthenticated",
      msg: /authorization: required/,
    },
    {
      name: "another pod's token",
      headers: () => ({ "x-trellis-pod": "ns/p1", authorization: `Bearer ${podToken(KEY, "ns", "p2", "uid-p2")}` }),
      status: 401,
      code: "bad_credentials",
      msg: /not the token issued to pod ns\/p1/,
    },
    {
      name: "token of another operator key",
      headers: () => ({
        "x-trellis-pod": "ns/p1",
        authorization: `Bearer ${podToken("other", "ns", "p1", "uid-p1")}`,
      }),
      status: 401,
      code: "bad_credentials",
      msg: /not the token/,
    },
    {
      name: "valid token of a pod that is no function pod",
      headers: () => ({
        "x-trellis-pod": "ns/stranger",
        authorization: `Bearer ${podToken(KEY, "ns", "stranger", "uid-stranger")}`,
      }),
      status: 403,
      code: "pod_unknown",
      msg: /not a pod known to the operator/,
    },
    {
      name: "token of an earlier pod of the same name (another uid)",
      headers: () => ({ "x-trellis-pod": "ns/p1", authorization: `Bearer ${podToken(KEY, "ns", "p1", "uid-old")}` }),
      status: 401,
      code: "bad_credentials",
      msg: /not the token issued to pod ns\/p1 \(uid uid-p1\)/,
    },
  ];
  for (const tc of cases) {
    it(tc.name, async () => {
      h = await harness();
      h.pods.set("p1", "f");
      const r = await inject(tc.headers());
      expect(r.statusCode).toBe(tc.status);
      expect(r.json().code).toBe(tc.code);
      expect(r.json().message).toMatch(tc.msg);
    });
  }
  it("a valid token passes", async () => {
    h = await harness();
    h.pods.set("p1", "f");
    const r = await inject({
      "x-trellis-pod": "ns/p1",
      authorization: `Bearer ${podToken(KEY, "ns", "p1", "uid-p1")}`,
    });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ cancel: [] });
  });
});

describe("runtime API: validation and ownership", () => {
  it("register answers the settings and checks the function", async () => {
    h = await harness();
    h.pods.set("p1", "f");
    const ok = await h.req("p1", "POST", "/register", {
      function: "f",
      capacity: 2,
      functions: [{ name: "f", async: false, timeoutSeconds: 9 }],
      sidecarVersion: "1",
    });
    expect(ok.json()).toEqual({
      heartbeatIntervalMs: 5000,
      leaseWaitMs: 20000,
      inlineValueLimitBytes: 65536,
      directBlobs: false,
    });
    expect(h.engine.dispatcher.pods.discovered("ns", "app", "f")).toMatchObject({ timeoutSeconds: 9 });
    expect(h.engine.dispatcher.podActivity("ns", "p1")).toMatchObject({ registered: true, running: 0 });
    const bad = await h.req("p1", "POST", "/register", {
      function: "g",
      capacity: 2,
      functions: [],
      sidecarVersion: "1",
    });
    expect(bad.status).toBe(400);
    expect(bad.json().message).toMatch(/body.function: pod p1 runs function f/);
  });

  it("bodies are validated: the message names the field and the rule", async () => {
    h = await harness();
    h.pods.set("p1", "f");
    const r = await h.req("p1", "POST", "/lease", { capacity: -1, waitMs: 10 });
    expect(r.status).toBe(400);
    expect(r.json()).toEqual({ code: "invalid_body", message: expect.stringMatching(/^body.capacity: .*>=0/) });
    const v = await h.req("p1", "POST", "/calls/x/result", { attempt: 1, output: { value: 1, pickle: "AA==" } });
    expect(v.json().message).toMatch(/^body.output: exactly one of value, pickle, list, call, blob or raw/);
    const c = await h.req("p1", "POST", "/calls/x/result", { attempt: 1, output: { call: "other" } });
    expect(c.json().message).toMatch(/call references are not allowed/);
    const nf = await h.req("p1", "POST", "/nope", {});
    expect(nf.json().code).toBe("route_not_found");
  });

  it("reports only for the pod's current attempt", async () => {
    h = await harness();
    const a = await running();
    h.pods.set("other", "f");
    const notMine = await h.req("other", "POST", "/calls/r/result", { attempt: a.attempt, output: { value: 1 } });
    expect([notMine.status, notMine.json().code]).toEqual([403, "not_assigned"]);
    const stale = await h.req("pf", "POST", "/calls/r/result", { attempt: 7, output: { value: 1 } });
    expect([stale.status, stale.json().code]).toEqual([409, "stale_attempt"]);
    const missing = await h.req("pf", "POST", "/calls/zz/result", { attempt: 1, output: { value: 1 } });
    expect([missing.status, missing.json().code]).toEqual([404, "call_not_found"]);
    expect((await h.req("pf", "POST", "/calls/r/result", { attempt: 1, output: { value: 1 } })).status).toBe(200);
    // A retried report of the same attempt is acknowledged and changes nothing.
    expect((await h.req("pf", "POST", "/calls/r/result", { attempt: 1, output: { value: 2 } })).status).toBe(200);
    expect(h.call("r")!.status!.output).toEqual({ value: 1 });
  });

  it("lease answers carry the operator's epoch and a seq; heartbeats naming them find missing calls lost", async () => {
    h = await harness();
    h.pods.set("pf", "f");
    await h.createRoot("r");
    const { epoch, seq } = (await h.req("pf", "POST", "/lease", { capacity: 1, waitMs: 2000 })).json();
    expect({ epoch, seq }).toEqual({ epoch: h.engine.dispatcher.pods.epoch, seq: 1 });
    const bad = await h.req("pf", "POST", "/heartbeat", { calls: [], lease: { epoch: "a b", seq: -1 } });
    expect([bad.status, bad.json().message]).toEqual([400, expect.stringMatching(/^body.lease.epoch: /)]);
    // Built before the lease answer arrived: the call is not lost.
    expect((await h.req("pf", "POST", "/heartbeat", { calls: [], lease: { epoch, seq: 0 } })).json()).toEqual({
      cancel: [],
    });
    expect(h.engine.dispatcher.pods.attemptState("ns", "pf", "r", 1)).toBe("alive");
    await h.req("pf", "POST", "/heartbeat", { calls: [], lease: { epoch, seq } });
    await h.until("the lost attempt re-queued", () => h.call("r")?.status?.phase === "Queued");
  });

  it("children: names derived from the parent, inputs of the same request, sizes bounded", async () => {
    h = await harness({ inlineValueLimitBytes: 100 });
    await running();
    const c0 = childName("r", "r", 0);
    const post = (calls: unknown[]) => h.req("pf", "POST", "/calls/r/children", { attempt: 1, calls });
    const wrong = await post([{ name: "r-aaaaaaaaaaaaaaaa", sequence: 0, function: "g" }]);
    expect([wrong.status, wrong.json().code]).toEqual([400, "child_name_mismatch"]);
    expect(wrong.json().message).toContain(`body.calls[0].name: must be ${c0}`);
    const unknown = await post([{ name: c0, sequence: 0, function: "g", args: [{ call: "elsewhere" }] }]);
    expect([unknown.status, unknown.json().message]).toEqual([
      400,
      "body.calls[0].args[0].call: no call named elsewhere in request r",
    ]);
    const big = await post([{ name: c0, sequence: 0, function: "g", kwargs: { x: { value: "y".repeat(200) } } }]);
    expect([big.status, big.json().code]).toEqual([413, "value_too_large"]);
    expect(big.json().message).toMatch(/^body.calls\[0\].kwargs.x.value: 202 bytes inline, over the limit of 100/);
    const blob = await post([{ name: c0, sequence: 0, function: "g", args: [{ blob: "other-ns/r/x" }] }]);
    expect(blob.json().message).toMatch(/must be a blob of namespace ns/);
    const both = await post([{ name: c0, sequence: 0, function: "g", map: { items: [], itemsFrom: "r" } }]);
    expect(both.json().message).toMatch(/map: exactly one of items or itemsFrom/);
    expect((await post([{ name: c0, sequence: 0, function: "g" }])).status).toBe(200);
    const clash = await post([{ name: c0, sequence: 0, function: "h" }]);
    expect([clash.status, clash.json().code]).toEqual([409, "name_conflict"]);
    h.pods.set("other", "f");
    const foreign = await h.req("other", "POST", "/calls/r/children", {
      attempt: 1,
      calls: [{ name: c0, sequence: 0, function: "g" }],
    });
    expect(foreign.json().code).toBe("not_assigned");
  });

  it("tail calls must name a call of the same request", async () => {
    h = await harness();
    await running();
    const r = await h.req("pf", "POST", "/calls/r/tail", { attempt: 1, tailCall: "nowhere" });
    expect([r.status, r.json().code]).toEqual([400, "unknown_tail_call"]);
  });

  it("wait is limited to requests the pod works on", async () => {
    h = await harness();
    await running("pf", "f", "r");
    await h.createRoot("r2");
    h.pods.set("px", "f");
    const w = await h.req("px", "POST", "/wait", { calls: ["r"], mode: "any", waitMs: 0 });
    expect([w.status, w.json().code]).toEqual([403, "not_in_request"]);
    const mixed = await h.req("pf", "POST", "/wait", { calls: ["r", "r2"], mode: "any", waitMs: 0 });
    expect(mixed.json().code).toBe("not_in_request");
    const now = await h.req("pf", "POST", "/wait", { calls: ["r"], mode: "any", waitMs: 0 });
    expect(now.json()).toEqual({ outcomes: [] });
  });
});

describe("runtime API: values, blobs, state, progress", () => {
  it("an output over the inline limit goes to the blob store", async () => {
    h = await harness({ inlineValueLimitBytes: 64 });
    await running();
    const big = "x".repeat(100);
    await h.req("pf", "POST", "/calls/r/result", { attempt: 1, output: { value: big } });
    const ref = h.call("r")!.status!.output!.blob!;
    expect(ref).toMatch(/^ns\/r\/[0-9a-f-]{36}$/);
    expect(JSON.parse(readFileSync(join(h.blobDir, "blobs", ref), "utf8"))).toEqual({ value: big });
  });

  it("a map with pickled items outputs the list form; over the limit it goes to a blob", async () => {
    h = await harness({ inlineValueLimitBytes: 80 });
    await running();
    h.pods.set("pg", "g");
    const mapOf = async (seq: number, outputs: object[]) => {
      const m = childName("r", "r", seq);
      const items = outputs.map((_, i) => ({ value: i }));
      await h.req("pf", "POST", "/calls/r/children", {
        attempt: 1,
        calls: [{ name: m, sequence: seq, function: "g", map: { items } }],
      });
      await h.until("queued", () => h.engine.dispatcher.queuedAndRunning("ns", "app", "g").queued === outputs.length);
      const leased = (await h.req("pg", "POST", "/lease", { capacity: 10, waitMs: 1000 })).json().assignments;
      for (const [i, a] of leased.entries())
        await h.req("pg", "POST", `/calls/${a.call}/result`, { attempt: 1, output: outputs[i] });
      const w = await h.req("pf", "POST", "/wait", { calls: [m], mode: "all", waitMs: 2000 });
      return w.json().outcomes[0].output;
    };
    expect(await mapOf(0, [{ value: "a" }, { pickle: "gASVAAAAAAAAAAAu" }])).toEqual({
      list: [{ value: "a" }, { pickle: "gASVAAAAAAAAAAAu" }],
    });
    const big = await mapOf(1, [{ value: "x".repeat(50) }, { pickle: "gASVAAAAAAAAAAAu" }]);
    expect(big.blob).toMatch(/^ns\/r\//);
    const got = await h.req("pf", "GET", `/blobs/${big.blob}`);
    expect(got.json()).toEqual({ list: [{ value: "x".repeat(50) }, { pickle: "gASVAAAAAAAAAAAu" }] });
  });

  it("code-load failures are handed to the Application controller", async () => {
    const seen: unknown[] = [];
    h = await harness({}, {}, { onCodeLoadFailure: (ns, app, pod, f) => seen.push([ns, app, pod, f.error.type]) });
    h.pods.set("p1", "f");
    const r = await h.req("p1", "POST", "/code-load-failure", {
      function: "f",
      error: { type: "SyntaxError", message: "bad" },
      sidecarVersion: "1",
    });
    expect(r.status).toBe(200);
    expect(seen).toEqual([["ns", "app", "p1", "SyntaxError"]]);
  });

  it("run_later: a child with delaySeconds is not dispatched before its time", async () => {
    const clock = useFakeClock();
    h = await harness({}, {}, { clock });
    await running();
    h.pods.set("pg", "g");
    const c = childName("r", "r", 0);
    const t0 = clock.now();
    await h.req("pf", "POST", "/calls/r/children", {
      attempt: 1,
      calls: [{ name: c, sequence: 0, function: "g", delaySeconds: 0.2 }],
    });
    expect(h.call(c)!.spec.startAfter).toBe(new Date(t0 + 200).toISOString());
    // A lease waiting from the submission on gets the child when 200 ms have passed on the fake
    // clock, not before.
    let leased: { call: string }[] | undefined;
    const req = h
      .req("pg", "POST", "/lease", { capacity: 1, waitMs: 2000 })
      .then((r) => (leased = r.json().assignments));
    await clock.advance(199);
    expect(leased).toBeUndefined();
    await clock.advance(1);
    expect(leased).toMatchObject([{ call: c }]);
    await req;
  });

  it("a failure marked not retryable is final whatever the policy", async () => {
    h = await harness(
      {},
      { defaults: { retries: { maxRetries: 5, initialDelaySeconds: 0, maxDelaySeconds: 0, delayMultiplier: 1 } } },
    );
    await running();
    await h.req("pf", "POST", "/calls/r/failure", {
      attempt: 1,
      kind: "user",
      retryable: false,
      error: { type: "SDKUsageError", message: "unknown function" },
    });
    expect(h.call("r")!.status).toMatchObject({
      phase: "Failed",
      error: { type: "SDKUsageError", reason: "function_error" },
    });
  });

  it("blobs stream in and out, filed under the call's request, bounded in size, namespaced", async () => {
    h = await harness({ maxBlobBytes: 1000 });
    await running();
    const put = (body: Buffer, q = "?call=r") =>
      h.runtimeApi.inject({
        method: "PUT",
        url: `${RUNTIME_API_PREFIX}/blobs${q}`,
        headers: {
          "x-trellis-pod": "ns/pf",
          authorization: `Bearer ${podToken(KEY, "ns", "pf", "uid-pf")}`,
          "content-type": "application/octet-stream",
        },
        payload: body,
      });
    const data = Buffer.from([0, 1, 2, 255, 254]);
    const r = await put(data);
    expect(r.statusCode).toBe(201);
    const ref = r.json().blob as string;
    expect(ref.startsWith("ns/r/")).toBe(true);
    const g = await h.runtimeApi.inject({
      method: "GET",
      url: `${RUNTIME_API_PREFIX}/blobs/${ref}`,
      headers: { "x-trellis-pod": "ns/pf", authorization: `Bearer ${podToken(KEY, "ns", "pf", "uid-pf")}` },
    });
    expect(g.statusCode).toBe(200);
    expect(Buffer.from(g.rawPayload)).toEqual(data);
    expect((await put(Buffer.alloc(1001))).json().code).toBe("blob_too_large");
    expect((await put(data, "")).statusCode).toBe(201); // one request running: inferred
    const other = await h.req("pf", "GET", "/blobs/other/r/x");
    expect(other.json().code).toBe("forbidden_blob");
    const otherRequest = await h.req("pf", "GET", "/blobs/ns/r9/x");
    expect(otherRequest.json()).toMatchObject({ code: "forbidden_blob", message: expect.stringMatching(/request r9/) });
    const missing = await h.req("pf", "GET", "/blobs/ns/r/none");
    expect(missing.json().code).toBe("blob_not_found");
    const dots = await h.req("pf", "GET", "/blobs/ns/../x");
    expect(dots.status).toBeGreaterThanOrEqual(400);
  });

  it("blob URLs: refused by a store that cannot presign; otherwise only the pod's requests, sizes bounded", async () => {
    h = await harness({ maxBlobBytes: 1000 });
    await running();
    const register = { function: "f", capacity: 1, functions: [], sidecarVersion: "t" };
    expect((await h.req("pf", "POST", "/register", register)).json().directBlobs).toBe(false);
    const refused = await h.req("pf", "POST", "/blob-urls", { put: { call: "r", size: 5 } });
    expect(refused.status).toBe(404);
    expect(refused.json().code).toBe("direct_blobs_unavailable");
    await h.close();

    class Presigning extends FileBlobStore {
      presign = async (ref: string, op: { method: "GET" } | { method: "PUT"; size: number }, s: number) =>
        `https://store.test/${ref}?method=${op.method}&size=${"size" in op ? op.size : ""}&expires=${s}`;
    }
    h = await harness({ maxBlobBytes: 1000 }, undefined, {
      blobs: new Presigning(mkdtempSync(join(tmpdir(), "trellis-presign-"))),
    });
    await running();
    expect((await h.req("pf", "POST", "/register", register)).json().directBlobs).toBe(true);
    const put = await h.req("pf", "POST", "/blob-urls", { put: { call: "r", size: 5 } });
    expect(put.status).toBe(200);
    const { blob, url } = put.json().put as { blob: string; url: string };
    expect(blob.startsWith("ns/r/")).toBe(true);
    expect(url).toBe(`https://store.test/${blob}?method=PUT&size=5&expires=300`);
    const get = await h.req("pf", "POST", "/blob-urls", { get: [blob] });
    expect(get.json().get).toEqual([{ blob, url: `https://store.test/${blob}?method=GET&size=&expires=300` }]);
    // Another request's or namespace's blob, a call not assigned to the pod, too many bytes, nothing asked.
    expect((await h.req("pf", "POST", "/blob-urls", { get: ["ns/r9/x"] })).json().code).toBe("forbidden_blob");
    expect((await h.req("pf", "POST", "/blob-urls", { get: ["other/r/x"] })).json().code).toBe("forbidden_blob");
    expect((await h.req("pf", "POST", "/blob-urls", { put: { call: "r9", size: 1 } })).json().code).toBe(
      "call_not_found",
    );
    const big = await h.req("pf", "POST", "/blob-urls", { put: { call: "r", size: 1001 } });
    expect(big.json()).toMatchObject({ code: "blob_too_large", message: expect.stringMatching(/body\.put\.size/) });
    const none = await h.req("pf", "POST", "/blob-urls", {});
    expect(none.json()).toMatchObject({ code: "invalid_body", message: expect.stringMatching(/put or get/) });
  });

  it("request state is kept per request and read back", async () => {
    h = await harness();
    await running();
    expect((await h.req("pf", "GET", "/requests/r/state/counter")).json()).toEqual({});
    expect((await h.req("pf", "PUT", "/requests/r/state/counter", { value: { value: 3 } })).status).toBe(200);
    expect((await h.req("pf", "GET", "/requests/r/state/counter")).json()).toEqual({ value: { value: 3 } });
    const bad = await h.req("pf", "GET", "/requests/r/state/bad key");
    expect(bad.json().message).toMatch(/^path.key: /);
    h.pods.set("px", "f");
    expect((await h.req("px", "GET", "/requests/r/state/counter")).json().code).toBe("not_in_request");
  });

  it("progress is written at once, then at most once per interval (the latest wins)", async () => {
    // The interval must outlast the five reports even on a loaded machine (50 ms did not).
    h = await harness({ progressWriteIntervalMs: 2_000 });
    await running();
    for (let i = 1; i <= 5; i++) await h.req("pf", "POST", "/calls/r/progress", { current: i, total: 5 });
    await h.until("latest progress", () => h.call("r")?.status?.progress?.current === 5);
    expect(h.api.writes.filter((w) => w.patch?.progress !== undefined).length).toBe(2);
  });
});

describe("runtime API over a real socket", () => {
  it("a long-poll lease whose connection closes takes no call", async () => {
    h = await harness();
    h.pods.set("p1", "f");
    await h.runtimeApi.listen({ host: "127.0.0.1", port: 0 });
    const addr = h.runtimeApi.server.address() as { port: number };
    const hangUp = new AbortController();
    const polling = fetch(`http://127.0.0.1:${addr.port}${RUNTIME_API_PREFIX}/lease`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-trellis-pod": "ns/p1",
        authorization: `Bearer ${podToken(KEY, "ns", "p1", "uid-p1")}`,
      },
      body: JSON.stringify({ capacity: 1, waitMs: 5000 }),
      signal: hangUp.signal,
    }).catch((e: Error) => e.name);
    await h.until("lease parked", () => h.engine.dispatcher.leaseWaiting("ns", "p1"));
    hangUp.abort();
    expect(await polling).toBe("AbortError");
    await h.until("lease dropped", () => !h.engine.dispatcher.leaseWaiting("ns", "p1"));
    await h.createRoot("r1");
    await h.until("queued", () => h.engine.dispatcher.queuedAndRunning("ns", "app", "f").queued === 1);
    expect(h.call("r1")!.status?.phase).toBeUndefined();
    const got = await h.req("p1", "POST", "/lease", { capacity: 1, waitMs: 1000 });
    expect(got.json().assignments[0].call).toBe("r1");
  });
});
