// The operator's HTTP path to the API server.
//
// The kubeconfig is read once with @kubernetes/client-node (files, in-cluster, exec and token
// auth). Requests then go through one long-lived keep-alive agent: client-node 1.x builds a new
// https.Agent for every request (applyToFetchOptions → createAgent), which costs a TLS handshake
// per call; reusing sockets is the difference between a few hundred and a few thousand writes per
// second (see the report in the commit log and bench/kube-writer.ts). Watches use a second agent
// so long-running streams never take sockets from writes.
import * as http from "node:http";
import * as https from "node:https";
import * as tls from "node:tls";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeApiError, errorFromResponse } from "./errors.js";
import { type Logger, silentLogger } from "../../../protocol/index.js";

export const FIELD_MANAGER = "trellis-operator";

/** Defaults, documented here once. */
export const CLIENT_DEFAULTS = {
  /** Concurrent sockets for ordinary requests (the API server serves 400 reads / 200 writes in flight by default). */
  maxSockets: 128,
  /** Per-request timeout; watches have none (the watchdog covers them). */
  requestTimeoutMs: 30_000,
  /** Token-based credentials (in-cluster, exec plugins) are re-read this often. */
  authRefreshMs: 60_000,
} as const;

/** The kubeconfig's CA, client certificate and key as one TLS context, built once. */
function sharedSecureContext(creds: https.RequestOptions): tls.SecureContext {
  return tls.createSecureContext({
    ca: creds.ca,
    cert: creds.cert,
    key: creds.key,
    pfx: creds.pfx,
    passphrase: creds.passphrase,
  });
}

const IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/**
 * Loads a kubeconfig: an explicit path, else $KUBECONFIG, else the in-cluster service account,
 * else ~/.kube/config. Unlike client-node's loadFromDefault it never falls back to
 * http://localhost:8080.
 */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) {
    if (!fs.existsSync(file)) throw new Error(`kubeconfig ${file}: file does not exist`);
    kc.loadFromFile(file);
  } else if (process.env.KUBECONFIG) {
    kc.loadFromDefault();
  } else if (process.env.KUBERNETES_SERVICE_HOST && fs.existsSync(IN_CLUSTER_TOKEN)) {
    kc.loadFromCluster();
  } else {
    const home = path.join(os.homedir(), ".kube", "config");
    if (!fs.existsSync(home)) {
      throw new Error("kubeconfig: none found (set KUBECONFIG, pass a path, or run in a pod with a service account)");
    }
    kc.loadFromFile(home);
  }
  if (!kc.getCurrentCluster()) throw new Error("kubeconfig: the current context names no cluster");
  return kc;
}

/**
 * Makes client-node's generated API clients (kc.makeApiClient(CoreV1Api), ...) reuse one
 * keep-alive agent instead of building a new one, with a new TLS handshake, for every request.
 * createAgent is private in client-node's typings but is the one seam all its request paths use;
 * proxied clusters keep client-node's own agents.
 */
export function shareAgent(kc: KubeConfig, maxSockets: number = CLIENT_DEFAULTS.maxSockets): KubeConfig {
  const target = kc as unknown as {
    createAgent: (cluster: { proxyUrl?: string; server: string } | null, opts: https.AgentOptions) => http.Agent;
  };
  const original = target.createAgent.bind(kc);
  const cache = new Map<string, http.Agent>();
  target.createAgent = (cluster, opts) => {
    if (!cluster || cluster.proxyUrl) return original(cluster, opts);
    const key = `${cluster.server}|${String(opts.rejectUnauthorized)}|${opts.servername ?? ""}`;
    let agent = cache.get(key);
    if (!agent) {
      const Agent = cluster.server.startsWith("http:") ? http.Agent : https.Agent;
      agent = new Agent({ ...opts, keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: "lifo" });
      cache.set(key, agent);
    }
    return agent;
  };
  return kc;
}

export interface KubeClientOptions {
  maxSockets?: number;
  requestTimeoutMs?: number;
  userAgent?: string;
  log?: Logger;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ClientStats {
  requests: number;
  errors: number;
  inFlight: number;
  retries: number;
}

export function buildQuery(query: RequestOptions["query"]): string {
  if (!query) return "";
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

export class KubeClient {
  readonly stats: ClientStats = { requests: 0, errors: 0, inFlight: 0, retries: 0 };
  private headers: Record<string, string>;
  private authRefresh: NodeJS.Timeout | undefined;
  private readonly transport: typeof http | typeof https;
  private readonly host: string;
  private readonly port: number;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly log: Logger;

  private constructor(
    readonly kubeConfig: KubeConfig,
    private readonly agent: http.Agent,
    private readonly watchAgent: http.Agent,
    server: URL,
    headers: Record<string, string>,
    opts: KubeClientOptions,
  ) {
    this.transport = server.protocol === "http:" ? http : https;
    this.host = server.hostname.replace(/^\[|\]$/g, "");
    this.port = Number(server.port || (server.protocol === "http:" ? 80 : 443));
    this.prefix = server.pathname.replace(/\/$/, "");
    this.headers = headers;
    this.timeoutMs = opts.requestTimeoutMs ?? CLIENT_DEFAULTS.requestTimeoutMs;
    this.log = opts.log ?? silentLogger;
  }

  static async create(kc: KubeConfig, opts: KubeClientOptions = {}): Promise<KubeClient> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig: the current context names no cluster");
    const server = new URL(cluster.server);
    if (server.protocol === "http:" && !cluster.skipTLSVerify) {
      throw new Error(`kubeconfig cluster ${cluster.name}: plain http needs insecure-skip-tls-verify`);
    }
    const creds: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(creds);
    const headers = KubeClient.authHeaders(creds, opts.userAgent);
    const agentOpts: https.AgentOptions = {
      keepAlive: true,
      keepAliveMsecs: 30_000,
      maxSockets: opts.maxSockets ?? CLIENT_DEFAULTS.maxSockets,
      maxFreeSockets: opts.maxSockets ?? CLIENT_DEFAULTS.maxSockets,
      scheduling: "lifo", // reuse the warmest socket; idle extras time out
      // One context for every socket: without it each new connection parses the CA bundle, the
      // client certificate and its key again (~1 ms of CPU each; a burst of 100 new sockets
      // stalled the event loop for 150 ms in the bench).
      ...(server.protocol === "https:" ? { secureContext: sharedSecureContext(creds) } : {}),
      servername: cluster.tlsServerName,
      rejectUnauthorized: !cluster.skipTLSVerify,
    };
    const Agent = server.protocol === "http:" ? http.Agent : https.Agent;
    const agent = new Agent(agentOpts);
    const watchAgent = new Agent({ ...agentOpts, maxSockets: Infinity, maxFreeSockets: 16 });
    const client = new KubeClient(kc, agent, watchAgent, server, headers, opts);
    if (headers.authorization) client.startAuthRefresh();
    return client;
  }

  /** The one place request headers come from: auth from the kubeconfig plus our own. */
  private static authHeaders(tls: https.RequestOptions, userAgent?: string): Record<string, string> {
    const h: Record<string, string> = { accept: "application/json", "user-agent": userAgent ?? FIELD_MANAGER };
    for (const [k, v] of Object.entries((tls.headers ?? {}) as Record<string, unknown>)) {
      if (typeof v === "string" || typeof v === "number") h[k.toLowerCase()] = String(v);
    }
    if (tls.auth) h.authorization = `Basic ${Buffer.from(tls.auth).toString("base64")}`;
    return h;
  }

  private startAuthRefresh(): void {
    this.authRefresh = setInterval(() => void this.refreshAuth(), CLIENT_DEFAULTS.authRefreshMs);
    this.authRefresh.unref();
  }

  private async refreshAuth(): Promise<void> {
    try {
      const tls: https.RequestOptions = {};
      await this.kubeConfig.applyToHTTPSOptions(tls);
      this.headers = KubeClient.authHeaders(tls, this.headers["user-agent"]);
    } catch (e) {
      this.log.warn("refreshing API credentials failed", { err: e });
    }
  }

  /** Sends one request and parses the JSON answer; errors are KubeApiError for HTTP failures. */
  async request<T>(method: string, p: string, opts: RequestOptions = {}): Promise<T> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send<T>(method, p, body, opts);
      } catch (e) {
        // A keep-alive socket the server closed while idle fails on reuse before any answer.
        const reused = (e as { reusedSocket?: boolean }).reusedSocket;
        if (attempt === 0 && reused && !(e instanceof KubeApiError)) {
          this.stats.retries++;
          continue;
        }
        if (attempt === 0 && e instanceof KubeApiError && e.statusCode === 401 && this.headers.authorization) {
          await this.refreshAuth();
          this.stats.retries++;
          continue;
        }
        throw e;
      }
    }
  }

  private send<T>(method: string, p: string, body: string | undefined, opts: RequestOptions): Promise<T> {
    const fullPath = this.prefix + p + buildQuery(opts.query);
    const headers: Record<string, string> = { ...this.headers };
    if (body !== undefined) {
      headers["content-type"] = opts.contentType ?? "application/json";
      headers["content-length"] = String(Buffer.byteLength(body));
    }
    this.stats.requests++;
    this.stats.inFlight++;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | undefined, value?: T) => {
        if (settled) return;
        settled = true;
        this.stats.inFlight--;
        if (err) {
          this.stats.errors++;
          (err as { reusedSocket?: boolean }).reusedSocket = req.reusedSocket;
          reject(err);
        } else resolve(value as T);
      };
      const req = this.transport.request(
        { agent: this.agent, host: this.host, port: this.port, method, path: fullPath, headers, signal: opts.signal },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", (e) => settle(e));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const code = res.statusCode ?? 0;
            if (code >= 400) return settle(errorFromResponse(code, text, method, p));
            if (!text) return settle(undefined, undefined);
            let parsed: T;
            try {
              parsed = JSON.parse(text) as T;
            } catch {
              return settle(new Error(`${method} ${p}: answer is not JSON: ${text.slice(0, 200)}`));
            }
            settle(undefined, parsed);
          });
        },
      );
      req.on("error", (e) => settle(e));
      const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${p}: no answer within ${timeoutMs} ms`)));
      req.end(body);
    });
  }

  /**
   * Opens a streaming GET (a watch). Resolves with the response once the server answered 200;
   * aborting `signal` closes the connection.
   */
  stream(p: string, query: RequestOptions["query"], signal: AbortSignal): Promise<http.IncomingMessage> {
    const fullPath = this.prefix + p + buildQuery(query);
    return new Promise((resolve, reject) => {
      const req = this.transport.request(
        {
          agent: this.watchAgent,
          host: this.host,
          port: this.port,
          method: "GET",
          path: fullPath,
          headers: this.headers,
          signal,
        },
        (res) => {
          if (res.statusCode === 200) return resolve(res);
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () =>
            reject(errorFromResponse(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"), "GET", p)),
          );
        },
      );
      req.on("error", reject);
      req.end();
    });
  }

  /** Closes idle sockets and stops the credential refresh. */
  close(): void {
    if (this.authRefresh) clearInterval(this.authRefresh);
    this.agent.destroy();
    this.watchAgent.destroy();
  }
}

/** Loads the kubeconfig and makes a client in one step. */
export async function connect(opts: KubeClientOptions & { kubeconfig?: string } = {}): Promise<KubeClient> {
  return KubeClient.create(loadKubeConfig(opts.kubeconfig), opts);
}
