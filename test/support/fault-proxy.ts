// A fault-injecting HTTP proxy in front of the API server, for the fault-injection suite.
//
// Clients (the operator) speak plain HTTP to it on loopback; it forwards to the real server with
// the real credentials (TLS client certificate or bearer token). Each request is classed (lease
// renewal, watch, write, read) and, per class, a seeded plan picks at most one fault: 429 with
// Retry-After, 500, 503, a delay before forwarding, a reset before forwarding, an answer lost
// after the server committed it, or a watch stream cut mid-way. Every injected fault is counted.
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo, Socket } from "node:net";

export type RequestClass = "lease" | "watch" | "write" | "read";
export const FAULT_KINDS = ["throttle", "error500", "error503", "delay", "reset", "lostAnswer", "cutWatch"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
/** Probability of each fault for one request of a class; the sum must not exceed 1. */
export type FaultRates = Partial<Record<FaultKind, number>>;

export interface FaultPlan {
  seed: number;
  rates: Partial<Record<RequestClass, FaultRates>>;
  /** Delay faults wait a uniform time in [min, max] ms (default 200–1500). */
  delayMs?: [number, number];
  /** Retry-After of a 429, in seconds (default 1). */
  retryAfterSeconds?: number;
  /** A cut watch stream is cut after a uniform time in [min, max] ms (default 200–3000). */
  cutWatchAfterMs?: [number, number];
}

export interface Upstream {
  /** The API server's URL (http: or https:). */
  server: string;
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
  token?: string;
  /** Skip server certificate checks (only for kubeconfigs that say so). */
  insecure?: boolean;
}

/** mulberry32: a small seeded generator, so that a plan is reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function classify(method: string, url: string): RequestClass {
  const write = method !== "GET" && method !== "HEAD" && method !== "OPTIONS";
  if (write && url.includes("/apis/coordination.k8s.io/")) return "lease";
  const query = url.includes("?") ? new URLSearchParams(url.slice(url.indexOf("?") + 1)) : undefined;
  const watch = query?.get("watch");
  if (method === "GET" && (watch === "true" || watch === "1")) return "watch";
  return write ? "write" : "read";
}

/** The fault for one request: `roll` in [0, 1) walks the class's rates in FAULT_KINDS order. */
export function decideFault(rates: FaultRates | undefined, roll: number): FaultKind | undefined {
  if (!rates) return undefined;
  let acc = 0;
  for (const kind of FAULT_KINDS) {
    acc += rates[kind] ?? 0;
    if (roll < acc) return kind;
  }
  return undefined;
}

const CLASSES: RequestClass[] = ["lease", "watch", "write", "read"];

function classStreams(seed: number): Record<RequestClass, () => number> {
  return Object.fromEntries(CLASSES.map((c, i) => [c, seededRandom(seed + 7919 * (i + 1))])) as Record<
    RequestClass,
    () => number
  >;
}

/** A lost answer needs a committed write, a cut needs a stream: elsewhere they mean nothing. */
function applicableFault(cls: RequestClass, kind: FaultKind | undefined): FaultKind | undefined {
  if (kind === "cutWatch" && cls !== "watch") return undefined;
  if (kind === "lostAnswer" && cls === "watch") return undefined;
  return kind;
}

/**
 * The 1-based index of the first request of `cls` that a plan faults (0 when none of the first
 * `limit` is): a suite that made at least that many requests of the class must have seen a fault.
 */
export function firstFault(plan: FaultPlan, cls: RequestClass, limit = 10_000): number {
  const roll = classStreams(plan.seed)[cls];
  for (let n = 1; n <= limit; n++) if (applicableFault(cls, decideFault(plan.rates[cls], roll()))) return n;
  return 0;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te"]);

function statusBody(code: number, reason: string, message: string): string {
  return JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code });
}

export class FaultProxy {
  readonly requests: Record<RequestClass, number> = { lease: 0, watch: 0, write: 0, read: 0 };
  /** Injected faults by kind, and by `class:kind`. */
  readonly faults: Record<FaultKind, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<
    FaultKind,
    number
  >;
  readonly faultsByClass: Record<string, number> = {};
  /** While false, requests pass through untouched (still counted). */
  enabled = true;
  /** One stream per class, so the n-th request of a class meets the same fault in every run. */
  private readonly rolls: Record<RequestClass, () => number>;
  /** Delays and cut times draw from their own stream, leaving the class streams untouched. */
  private readonly timing: () => number;
  private readonly server: http.Server;
  private readonly agent: http.Agent;
  private readonly target: URL;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly upstream: Upstream,
    private readonly plan: FaultPlan,
  ) {
    this.rolls = classStreams(plan.seed);
    this.timing = seededRandom(plan.seed ^ 0x5bd1e995);
    this.target = new URL(upstream.server);
    const opts = { keepAlive: true, maxSockets: 256 };
    this.agent =
      this.target.protocol === "http:"
        ? new http.Agent(opts)
        : new https.Agent({
            ...opts,
            ca: upstream.ca,
            cert: upstream.cert,
            key: upstream.key,
            rejectUnauthorized: !upstream.insecure,
          });
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
    });
  }

  async listen(port = 0, host = "127.0.0.1"): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(port, host, resolve));
    return this.url;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  get totalFaults(): number {
    return Object.values(this.faults).reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }

  private pick(cls: RequestClass): FaultKind | undefined {
    const roll = this.rolls[cls]();
    if (!this.enabled) return undefined;
    return applicableFault(cls, decideFault(this.plan.rates[cls], roll));
  }

  private count(cls: RequestClass, kind: FaultKind): void {
    this.faults[kind]++;
    this.faultsByClass[`${cls}:${kind}`] = (this.faultsByClass[`${cls}:${kind}`] ?? 0) + 1;
  }

  private uniform([min, max]: [number, number]): number {
    return min + this.timing() * (max - min);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const cls = classify(method, url);
    this.requests[cls]++;
    const kind = this.pick(cls);
    if (kind) this.count(cls, kind);
    const body = await readBody(req);
    switch (kind) {
      case "throttle":
        res.writeHead(429, {
          "content-type": "application/json",
          "retry-after": String(this.plan.retryAfterSeconds ?? 1),
        });
        res.end(statusBody(429, "TooManyRequests", "fault proxy: too many requests, please try again later"));
        return;
      case "error500":
        res.writeHead(500, { "content-type": "application/json" });
        res.end(statusBody(500, "InternalError", "fault proxy: internal error"));
        return;
      case "error503":
        res.writeHead(503, { "content-type": "application/json" });
        res.end(statusBody(503, "ServiceUnavailable", "fault proxy: service unavailable"));
        return;
      case "reset":
        req.socket.resetAndDestroy();
        return;
      case "delay":
        await new Promise((r) => setTimeout(r, this.uniform(this.plan.delayMs ?? [200, 1500])));
        break;
      default:
        break;
    }
    this.forward(req, res, body, kind);
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, kind?: FaultKind): void {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && k !== "host") headers[k] = v;
    headers.host = this.target.host;
    if (this.upstream.token) headers.authorization = `Bearer ${this.upstream.token}`;
    const transport = this.target.protocol === "http:" ? http : https;
    const up = transport.request({
      protocol: this.target.protocol,
      hostname: this.target.hostname,
      port: this.target.port,
      method: req.method,
      path: req.url,
      headers,
      agent: this.agent,
    });
    // A client gone (cut, reset, timeout) ends the upstream request too, so watches do not pile up.
    let upstreamDone = false;
    res.once("close", () => {
      if (!upstreamDone) up.destroy();
    });
    up.on("error", () => {
      if (!res.headersSent) {
        res.writeHead(502, { "content-type": "application/json" });
        res.end(statusBody(502, "BadGateway", "fault proxy: upstream failed"));
      } else res.destroy();
    });
    up.on("response", (ur) => {
      ur.once("end", () => (upstreamDone = true));
      if (kind === "lostAnswer") {
        // The server has committed the write; the client never learns it.
        ur.resume();
        ur.once("end", () => req.socket.resetAndDestroy());
        return;
      }
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(ur.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
      res.writeHead(ur.statusCode ?? 502, out);
      if (typeof res.flushHeaders === "function") res.flushHeaders();
      ur.pipe(res);
      if (kind === "cutWatch") {
        const t = setTimeout(
          () => req.socket.resetAndDestroy(),
          this.uniform(this.plan.cutWatchAfterMs ?? [200, 3000]),
        );
        res.once("close", () => clearTimeout(t));
      }
    });
    up.end(body);
  }
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

export async function startFaultProxy(upstream: Upstream, plan: FaultPlan): Promise<FaultProxy> {
  const p = new FaultProxy(upstream, plan);
  await p.listen();
  return p;
}
