import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createLogger } from "../../../protocol/index.js";
import { OperatorClient } from "./operator-client.js";

const log = createLogger({ level: "error", sink: () => {} });
const fast = { initialMs: 5, maxMs: 20, multiplier: 2 };
const servers: http.Server[] = [];
const clients: OperatorClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A server answering each request with the next of `answers` (then the last one again). */
async function serve(answers: [number, unknown, Record<string, string>?][], port = 0) {
  const seen: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ path: req.url ?? "", headers: req.headers, body });
      const [status, answer, headers] = answers[Math.min(seen.length - 1, answers.length - 1)]!;
      res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(answer));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const client = (url: string) => {
  const c = new OperatorClient({ url, namespace: "ns", pod: "p-1", token: "t0k", log, backoff: fast });
  clients.push(c);
  return c;
};
const ok = z.object({ ok: z.boolean() });

describe("operator client", () => {
  it("sends the pod's credentials and JSON under the runtime prefix", async () => {
    const s = await serve([[200, { ok: true }]]);
    const r = await client(s.url).json("POST", "/heartbeat", { calls: [] }, ok);
    expect(r).toEqual({ ok: true, status: 200, body: { ok: true } });
    expect(s.seen[0]).toMatchObject({
      path: "/runtime/v1/heartbeat",
      headers: { authorization: "Bearer t0k", "x-trellis-pod": "ns/p-1", "content-type": "application/json" },
      body: '{"calls":[]}',
    });
  });

  it("retries 5xx, 408 and 429 until acknowledged, reusing the connection", async () => {
    const s = await serve([
      [503, { code: "unavailable", message: "later" }],
      [429, { code: "busy", message: "slow down" }],
      [408, { code: "timeout", message: "" }],
      [500, { code: "oops", message: "" }],
      [200, { ok: true }],
    ]);
    const c = client(s.url);
    const r = await c.json("POST", "/calls/r1/result", { attempt: 1 }, ok);
    expect(r.ok).toBe(true);
    expect(s.seen).toHaveLength(5);
    expect(c.stats.retries).toBe(4);
    expect(new Set(s.seen.map((x) => x.headers.connection))).toEqual(new Set(["keep-alive"]));
  });

  it("waits at least as long as Retry-After says", async () => {
    const s = await serve([
      [429, { code: "busy", message: "" }, { "retry-after": "1" }],
      [200, { ok: true }],
    ]);
    const started = Date.now();
    expect((await client(s.url).json("POST", "/lease", {}, ok)).ok).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it("returns 409 as stale and other 4xx as final, without retrying", async () => {
    const s = await serve([[409, { code: "stale_attempt", message: "attempt 1 is not current" }]]);
    expect(await client(s.url).json("POST", "/calls/r1/result", {}, ok)).toEqual({
      ok: false,
      status: 409,
      verdict: "stale",
      code: "stale_attempt",
      message: "attempt 1 is not current",
    });
    const t = await serve([
      [400, { code: "invalid", message: "output: exactly one of value, pickle, list, call, blob or raw must be set" }],
    ]);
    expect(await client(t.url).json("POST", "/calls/r1/result", {}, ok)).toMatchObject({
      ok: false,
      status: 400,
      verdict: "final",
      code: "invalid",
      message: expect.stringMatching(/^output: exactly one/),
    });
    expect(s.seen).toHaveLength(1);
    expect(t.seen).toHaveLength(1);
  });

  it("keeps trying while the operator is down, and gets through once it is up", async () => {
    const probe = await serve([[200, {}]]);
    const port = Number(new URL(probe.url).port);
    await new Promise((r) => servers.pop()!.close(r)); // the port is now free: connection refused
    const c = client(`http://127.0.0.1:${port}`);
    const pending = c.json("POST", "/register", {}, ok);
    const deadline = Date.now() + 5_000;
    while (c.stats.retries < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5)); // see refusals first
    expect(c.stats.retries).toBeGreaterThanOrEqual(3);
    await serve([[200, { ok: true }]], port);
    expect(await pending).toMatchObject({ ok: true, body: { ok: true } });
  });

  it("gives up a bounded request after its retries, and every request once closed", async () => {
    const s = await serve([[503, { code: "unavailable", message: "" }]]);
    const c = client(s.url);
    expect(await c.json("POST", "/heartbeat", {}, ok, { retries: 2 })).toMatchObject({
      ok: false,
      verdict: "final",
      code: "unreachable",
    });
    expect(s.seen).toHaveLength(3);
    const forever = c.json("POST", "/calls/r1/result", {}, ok);
    c.close();
    expect(await forever).toMatchObject({ ok: false, verdict: "closed" });
  });

  it("treats an answer that does not match the schema as final", async () => {
    const s = await serve([[200, { ok: "yes" }]]);
    expect(await client(s.url).json("POST", "/heartbeat", {}, ok)).toMatchObject({
      ok: false,
      verdict: "final",
      code: "bad_answer",
      message: expect.stringMatching(/^ok:/),
    });
  });
});
