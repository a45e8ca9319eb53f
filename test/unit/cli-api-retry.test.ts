// The plugin's retries of the operator's HTTP API: the policy (which failures, how long to wait,
// until when) as a pure function, and fetchWithRetry / the invoke path against a real local server
// that fails the way a restarting or failing-over operator does.
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  ApiRetryError,
  type Failure,
  backoffMs,
  fetchWithRetry,
  isConnectionError,
  retryAfterMs,
  retryBudgetMs,
  retryDecision,
} from "../../cli/api-retry.js";
import { CliError } from "../../cli/cluster.js";
import { invokeViaApi } from "../../cli/requests.js";

/** What undici's fetch rejects with when the connection fails: TypeError("fetch failed") and a coded cause. */
const fetchFailed = (code: string, message = code) =>
  new TypeError("fetch failed", { cause: Object.assign(new Error(message), { code }) });

describe("retryDecision", () => {
  const half = () => 0.5;

  it("retries 502, 503, 504 and 429 and connection errors with backoff; not other answers", () => {
    for (const status of [502, 503, 504, 429])
      expect(retryDecision(1, { status }, 0, 120_000, half)).toEqual({ retry: true, delayMs: 150, transient: true });
    for (const status of [400, 401, 403, 404, 409, 415, 422, 500, 501])
      expect(retryDecision(1, { status }, 0, 120_000)).toEqual({ retry: false, delayMs: 0, transient: false });
    for (const code of ["ECONNREFUSED", "ECONNRESET", "UND_ERR_SOCKET", "UND_ERR_CONNECT_TIMEOUT", "EAI_AGAIN"])
      expect(retryDecision(2, { error: fetchFailed(code) }, 0, 120_000, half).retry).toBe(true);
    expect(retryDecision(1, { error: new DOMException("no answer in time", "TimeoutError") }, 0, 1000).retry).toBe(
      true,
    );
    // A wrong host, URL or certificate is not fixed by waiting.
    for (const error of [
      fetchFailed("ENOTFOUND"),
      fetchFailed("CERT_HAS_EXPIRED"),
      new TypeError("fetch failed", { cause: new Error("unknown scheme") }),
      new Error("boom"),
    ])
      expect(retryDecision(1, { error }, 0, 120_000)).toEqual({ retry: false, delayMs: 0, transient: false });
  });

  it("waits 0.2 s doubling up to 5 s, jittered to 50-100 %", () => {
    const full = [1, 2, 3, 4, 5, 6, 7, 30].map((a) => backoffMs(a, () => 1));
    expect(full).toEqual([200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    expect(backoffMs(3, () => 0)).toBe(400);
    for (let i = 0; i < 100; i++) {
      const d = backoffMs(2);
      expect(d).toBeGreaterThanOrEqual(200);
      expect(d).toBeLessThanOrEqual(400);
    }
  });

  it("stops at the deadline, and never sleeps past it", () => {
    const f: Failure = { status: 503 };
    expect(retryDecision(6, f, 119_000, 120_000, () => 1)).toEqual({ retry: true, delayMs: 1000, transient: true });
    expect(retryDecision(6, f, 120_000, 120_000)).toEqual({ retry: false, delayMs: 0, transient: true });
    expect(retryDecision(1, f, 0, 0)).toEqual({ retry: false, delayMs: 0, transient: true });
  });

  it("honours a Retry-After in seconds on 429 and 503; one past the deadline ends the retries", () => {
    expect(retryDecision(1, { status: 429, retryAfter: "2" }, 0, 120_000)).toEqual({
      retry: true,
      delayMs: 2000,
      transient: true,
    });
    expect(retryDecision(1, { status: 503, retryAfter: "0.5" }, 0, 120_000).delayMs).toBe(500);
    expect(retryDecision(1, { status: 429, retryAfter: "60" }, 100_000, 120_000)).toEqual({
      retry: false,
      delayMs: 0,
      transient: true,
    });
    // An HTTP date, or a Retry-After on a 502: the backoff.
    expect(
      retryDecision(1, { status: 429, retryAfter: "Wed, 21 Oct 2026 07:28:00 GMT" }, 0, 1e5, () => 1).delayMs,
    ).toBe(200);
    expect(retryDecision(1, { status: 502, retryAfter: "9" }, 0, 1e5, () => 1).delayMs).toBe(200);
    expect([retryAfterMs("3"), retryAfterMs(" 1.5 "), retryAfterMs("-1"), retryAfterMs(null)]).toEqual([
      3000,
      1500,
      undefined,
      undefined,
    ]);
  });

  it("takes its budget from TRELLIS_API_RETRY_SECONDS, else 120 s", () => {
    expect(retryBudgetMs({})).toBe(120_000);
    expect(retryBudgetMs({ TRELLIS_API_RETRY_SECONDS: "0" })).toBe(0);
    expect(retryBudgetMs({ TRELLIS_API_RETRY_SECONDS: "2.5" })).toBe(2500);
    expect(() => retryBudgetMs({ TRELLIS_API_RETRY_SECONDS: "soon" })).toThrow(ApiRetryError);
    expect(isConnectionError(fetchFailed("ECONNREFUSED"))).toBe(true);
  });
});

/** A server that plays `script` one step per request: a status, "drop" (the connection closes unanswered), or null (answer). */
let server: Server;
let base: string;
let script: (number | "drop" | null | { status: number; headers: Record<string, string> })[] = [];
const seen: { method: string; url: string; key: string | undefined; body: string }[] = [];

function answer(req: IncomingMessage, res: ServerResponse, body: string) {
  seen.push({ method: req.method!, url: req.url!, key: req.headers["idempotency-key"] as string | undefined, body });
  const step = script.length ? script.shift()! : null;
  if (step === "drop") return req.socket.destroy();
  if (step !== null) {
    const { status, headers } = typeof step === "number" ? { status: step, headers: {} } : step;
    res.writeHead(status, { "content-type": "application/json", ...headers });
    return res.end(JSON.stringify({ message: `scripted ${status}` }));
  }
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify(req.method === "POST" ? { request_id: "calc-r1" } : { ok: true }));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => answer(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
afterEach(() => {
  script = [];
  seen.length = 0;
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe("fetchWithRetry against a real server", () => {
  it("retries 503s and a dropped connection, then returns the answer", async () => {
    script = [503, "drop", 504];
    const sleeps: number[] = [];
    const r = await fetchWithRetry(`${base}/x`, {}, { sleep: async (ms) => void sleeps.push(ms) });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true });
    expect(seen).toHaveLength(4);
    expect(sleeps).toHaveLength(3);
    expect(sleeps[2]).toBeGreaterThanOrEqual(400);
  });

  it("sleeps for a 429's Retry-After", async () => {
    script = [{ status: 429, headers: { "retry-after": "3" } }];
    const sleeps: number[] = [];
    await fetchWithRetry(`${base}/x`, {}, { sleep: async (ms) => void sleeps.push(ms) });
    expect(sleeps).toEqual([3000]);
  });

  it("returns a permanent answer at once", async () => {
    script = [500];
    const r = await fetchWithRetry(`${base}/x`, {});
    expect(r.status).toBe(500);
    expect(await r.json()).toEqual({ message: "scripted 500" });
    expect(seen).toHaveLength(1);
  });

  it("gives up at the deadline naming the URL, the attempts and the last error", async () => {
    script = Array<number>(1000).fill(503);
    const started = Date.now();
    const e = await fetchWithRetry(`${base}/x`, { method: "POST" }, { budgetMs: 1000 }).catch((x: unknown) => x);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(e).toBeInstanceOf(ApiRetryError);
    const { message, status, attempts } = e as ApiRetryError;
    expect(message).toMatch(
      new RegExp(`^POST ${base}/x: gave up after \\d+ attempts in 1\\.\\ds; last error: HTTP 503: scripted 503$`),
    );
    expect(status).toBe(503);
    expect(attempts).toBe(seen.length);
    expect(attempts).toBeGreaterThanOrEqual(3);
  });

  it("gives up on a port nothing listens on at the deadline", async () => {
    const url = `http://127.0.0.1:${await closedPort()}/x`;
    const e = await fetchWithRetry(url, {}, { budgetMs: 500 }).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/gave up after \d+ attempts .*ECONNREFUSED/);
  });
});

describe("invoke through the HTTP API", () => {
  const api = () => ({ url: `${base}/`, token: "tk" });

  it("retries 503s with the same idempotency key on every attempt", async () => {
    script = [503, 503];
    const key = crypto.randomUUID();
    expect(await invokeViaApi(api(), "team-a", "calc", { x: 1 }, key, true)).toBe("calc-r1");
    expect(seen.map((s) => [s.method, s.url, s.key, s.body])).toEqual(
      Array(3).fill(["POST", "/v1/namespaces/team-a/applications/calc", key, '{"x":1}']),
    );
  });

  it("does not retry a refusal of the request", async () => {
    script = [400];
    const e = await invokeViaApi(api(), "team-a", "calc", 1, "k1", true).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CliError);
    expect((e as Error).message).toBe("invoke calc: HTTP 400: scripted 400");
    expect(seen).toHaveLength(1);
  });

  it("with an API that stays unavailable, stops at TRELLIS_API_RETRY_SECONDS with a clear error", async () => {
    vi.stubEnv("TRELLIS_API_RETRY_SECONDS", "0.5");
    script = Array<number>(1000).fill(502);
    const e = await invokeViaApi(api(), "team-a", "calc", 1, "k1", true).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CliError);
    expect((e as Error).message).toMatch(
      /^POST http:\/\/127\.0\.0\.1:\d+\/v1\/namespaces\/team-a\/applications\/calc: gave up after \d+ attempts in 0\.\ds; last error: HTTP 502: scripted 502$/,
    );
    expect(new Set(seen.map((s) => s.key))).toEqual(new Set(["k1"]));
  });

  it("when nothing answers, falls back to the direct create at once if it can, else retries", async () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const url = `http://127.0.0.1:${await closedPort()}`;
    const started = Date.now();
    expect(await invokeViaApi({ url }, "team-a", "calc", 1, "k1", true)).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(String(stderr.mock.calls[0]?.[0])).toMatch(
      /does not answer .*ECONNREFUSED.*creating the FunctionCall directly/,
    );

    vi.stubEnv("TRELLIS_API_RETRY_SECONDS", "0.4");
    const e = await invokeViaApi({ url }, "team-a", "calc", 1, "k1", false).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CliError);
    expect((e as Error).message).toMatch(
      /gave up after \d+ attempts in 0\.\ds; last error: fetch failed .*ECONNREFUSED/,
    );
  });
});
