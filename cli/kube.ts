// The plugin's own access to the API server: the kubeconfig read with client-node's KubeConfig
// (files, tokens, exec plugins, client certificates), then plain node:http(s) requests with the
// TLS options and headers it yields. Only what the plugin uses: JSON requests (get, list, create,
// server-side apply) and streamed GETs (watches, pod logs).
import * as http from "node:http";
import * as https from "node:https";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";

/** An HTTP error from the API server: its status code, Status.reason and message. */
export class KubeApiError extends Error {
  override readonly name = "KubeApiError";
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

function apiError(statusCode: number, body: string, method: string, path: string): KubeApiError {
  let status: { reason?: string; message?: string } | undefined;
  try {
    status = JSON.parse(body) as typeof status;
  } catch {
    // not JSON: keep the text
  }
  const reason = status?.reason ?? (statusCode === 404 ? "NotFound" : `HTTP${statusCode}`);
  const message = status?.message ?? (body.slice(0, 500) || `HTTP ${statusCode}`);
  return new KubeApiError(statusCode, reason, `${method} ${path}: ${message}`);
}

const IN_CLUSTER_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/**
 * The kubeconfig as kubectl picks it: the first file of $KUBECONFIG, else the in-cluster service
 * account, else ~/.kube/config (never client-node's fallback to http://localhost:8080).
 */
export function loadKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  const file = process.env.KUBECONFIG?.split(":")[0];
  if (file) {
    if (!existsSync(file)) throw new Error(`kubeconfig ${file}: file does not exist`);
    kc.loadFromFile(file);
  } else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) {
    kc.loadFromCluster();
  } else {
    const home = join(homedir(), ".kube", "config");
    if (!existsSync(home)) throw new Error("kubeconfig: none found (set KUBECONFIG or create ~/.kube/config)");
    kc.loadFromFile(home);
  }
  if (!kc.getCurrentCluster()) throw new Error("kubeconfig: the current context names no cluster");
  return kc;
}

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
}

function withQuery(path: string, query: Query | undefined): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export class KubeClient {
  private constructor(
    private readonly server: URL,
    private readonly agent: http.Agent,
    private readonly headers: Record<string, string>,
    private readonly timeoutMs: number,
  ) {}

  /** A client for the kubeconfig's current context (credentials are read once: a CLI run is short). */
  static async create(kc: KubeConfig, opts: { timeoutMs: number; userAgent: string }): Promise<KubeClient> {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig: the current context names no cluster");
    const tls: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(tls);
    const headers: Record<string, string> = { accept: "application/json", "user-agent": opts.userAgent };
    for (const [k, v] of Object.entries(tls.headers ?? {}))
      if (typeof v === "string" || typeof v === "number") headers[k.toLowerCase()] = String(v);
    if (tls.auth) headers.authorization = `Basic ${Buffer.from(tls.auth).toString("base64")}`;
    const server = new URL(cluster.server);
    const { ca, cert, key, pfx, passphrase, servername, rejectUnauthorized } = tls;
    // No keep-alive: a run makes a handful of requests, and a socket the server closed while a
    // watch ran would fail on reuse.
    const agent =
      server.protocol === "http:"
        ? new http.Agent()
        : new https.Agent({ ca, cert, key, pfx, passphrase, servername, rejectUnauthorized });
    return new KubeClient(server, agent, headers, opts.timeoutMs);
  }

  private open(method: string, path: string, opts: RequestOptions & { signal?: AbortSignal }) {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers = { ...this.headers };
    if (body !== undefined) headers["content-type"] = opts.contentType ?? "application/json";
    const url = new URL(this.server.pathname.replace(/\/$/, "") + withQuery(path, opts.query), this.server);
    const transport = url.protocol === "http:" ? http : https;
    const req = transport.request(url, { method, headers, agent: this.agent, signal: opts.signal });
    return { req, body };
  }

  /** One request; the JSON answer (undefined when empty). HTTP failures are KubeApiError. */
  request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const { req, body } = this.open(method, path, opts);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const code = res.statusCode ?? 0;
          if (code >= 400) return reject(apiError(code, text, method, path));
          try {
            resolve((text ? JSON.parse(text) : undefined) as T);
          } catch {
            reject(new Error(`${method} ${path}: answer is not JSON: ${text.slice(0, 200)}`));
          }
        });
      });
      req.on("error", reject);
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new Error(`${method} ${path}: no answer within ${this.timeoutMs} ms`)),
      );
      req.end(body);
    });
  }

  /** A streamed GET (a watch, a pod's log) once the server answered 200; aborting `signal` closes it. */
  stream(path: string, query: Query, signal: AbortSignal): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const { req } = this.open("GET", path, { query, signal });
      req.on("response", (res) => {
        if (res.statusCode === 200) return resolve(res);
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => reject(apiError(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"), "GET", path)));
      });
      req.on("error", reject);
      req.end();
    });
  }
}
