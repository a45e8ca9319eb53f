// HTTP client of the operator's runtime API: keep-alive connections, per-pod credentials, and
// retry with backoff until the operator answers (connection errors, 408, 429, 5xx). A 409 means
// the attempt is no longer current and other 4xx are final: both are returned, never retried.
import http from "node:http";
import https from "node:https";
import type { z } from "zod";
import { type Logger, POD_HEADER, RUNTIME_API_PREFIX } from "../../../protocol/index.js";
import { DEFAULT_BACKOFF, backoffDelay, classifyStatus, retryAfterMs, type BackoffPolicy } from "./backoff.js";

export type Reply<T> =
  | { ok: true; status: number; body: T }
  | { ok: false; status: number; verdict: "stale" | "final" | "closed"; code: string; message: string };

export interface RequestOptions {
  /** Retries after the first try; default: until acknowledged. */
  retries?: number;
  /** Per try; long-polls pass their wait plus a margin. */
  timeoutMs?: number;
  /** Raw request body (otherwise `body` is sent as JSON). */
  contentType?: string;
}

export interface OperatorClientOptions {
  url: string;
  namespace: string;
  pod: string;
  token: string;
  log: Logger;
  backoff?: BackoffPolicy;
  random?: () => number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Buffer,
    readonly retryAfter: string | undefined,
  ) {
    super(`HTTP ${status}`);
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class OperatorClient {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly headers: Record<string, string>;
  private readonly backoff: BackoffPolicy;
  private readonly random: () => number;
  private readonly log: Logger;
  private closed = false;
  private readonly sleepers = new Set<() => void>();
  /** Requests answered and their total time, for the overhead figure in logs. */
  readonly stats = { requests: 0, retries: 0, totalMs: 0 };

  constructor(o: OperatorClientOptions) {
    this.base = new URL(o.url);
    const tls = this.base.protocol === "https:";
    this.transport = tls ? https : http;
    this.agent = tls
      ? new https.Agent({ keepAlive: true, keepAliveMsecs: 10_000, scheduling: "lifo" })
      : new http.Agent({ keepAlive: true, keepAliveMsecs: 10_000, scheduling: "lifo" });
    this.headers = { authorization: `Bearer ${o.token}`, [POD_HEADER]: `${o.namespace}/${o.pod}` };
    this.backoff = o.backoff ?? DEFAULT_BACKOFF;
    this.random = o.random ?? Math.random;
    this.log = o.log;
  }

  /** Stops every retry loop (they return `closed`) and the idle connections. */
  close(): void {
    this.closed = true;
    for (const wake of this.sleepers) wake();
    this.agent.destroy();
  }

  async json<T>(
    method: string,
    path: string,
    body: unknown,
    schema: z.ZodType<T>,
    opts: RequestOptions = {},
  ): Promise<Reply<T>> {
    const payload =
      body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body), "utf8");
    const r = await this.bytes(method, path, payload, { contentType: "application/json", ...opts });
    if (!r.ok) return r;
    let value: unknown;
    try {
      value = r.body.length ? JSON.parse(r.body.toString("utf8")) : {};
    } catch {
      return this.bad(method, path, r.status, "the answer is not JSON");
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success)
      return this.bad(
        method,
        path,
        r.status,
        parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
      );
    return { ok: true, status: r.status, body: parsed.data };
  }

  async bytes(
    method: string,
    path: string,
    body: Buffer | undefined,
    opts: RequestOptions = {},
  ): Promise<Reply<Buffer>> {
    const retries = opts.retries ?? Infinity;
    for (let attempt = 0; ; attempt++) {
      if (this.closed)
        return { ok: false, status: 0, verdict: "closed", code: "closed", message: "the sidecar is stopping" };
      let wait: number | undefined;
      const started = performance.now();
      try {
        const res = await this.once(method, path, body, opts);
        this.stats.requests++;
        this.stats.totalMs += performance.now() - started;
        return { ok: true, status: 200, body: res };
      } catch (e) {
        if (e instanceof HttpError) {
          const verdict = classifyStatus(e.status);
          const { code, message } = errorBody(e.body);
          if (verdict !== "retry") {
            return { ok: false, status: e.status, verdict: verdict === "stale" ? "stale" : "final", code, message };
          }
          wait = retryAfterMs(e.retryAfter);
          this.warnRetry(method, path, attempt, `HTTP ${e.status} ${code}: ${message}`);
        } else {
          this.warnRetry(method, path, attempt, (e as Error).message);
        }
      }
      if (attempt >= retries) {
        return {
          ok: false,
          status: 0,
          verdict: "final",
          code: "unreachable",
          message: `gave up after ${attempt + 1} tries`,
        };
      }
      this.stats.retries++;
      await this.sleep(Math.max(wait ?? 0, backoffDelay(attempt, this.backoff, this.random)));
    }
  }

  private warnRetry(method: string, path: string, attempt: number, why: string): void {
    // The first failures are common (operator restarting); keep the log readable.
    if (attempt < 3 || attempt % 10 === 0)
      this.log.warn("operator request failed, retrying", { method, path, attempt, why });
  }

  private bad(method: string, path: string, status: number, why: string): Reply<never> {
    this.log.error("operator answer does not match the runtime API", { method, path, status, why });
    return { ok: false, status, verdict: "final", code: "bad_answer", message: why };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.sleepers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  private once(method: string, path: string, body: Buffer | undefined, opts: RequestOptions): Promise<Buffer> {
    const url = new URL(RUNTIME_API_PREFIX + path, this.base);
    const headers: Record<string, string | number> = { ...this.headers, accept: "application/json" };
    if (body !== undefined) {
      headers["content-type"] = opts.contentType ?? "application/json";
      headers["content-length"] = body.length;
    }
    return new Promise<Buffer>((resolve, reject) => {
      const req = this.transport.request(url, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const data = Buffer.concat(chunks);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(data);
          else reject(new HttpError(status, data, headerOf(res.headers["retry-after"])));
        });
      });
      req.setTimeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, () =>
        req.destroy(new Error(`no answer within ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`)),
      );
      req.on("error", reject);
      req.end(body);
    });
  }
}

const headerOf = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h[0] : h);

function errorBody(body: Buffer): { code: string; message: string } {
  try {
    const v = JSON.parse(body.toString("utf8")) as { code?: unknown; message?: unknown };
    return {
      code: typeof v.code === "string" ? v.code : "unknown",
      message: typeof v.message === "string" ? v.message : "",
    };
  } catch {
    return { code: "unknown", message: body.toString("utf8").slice(0, 500) };
  }
}
