// kubectl trellis ui: a proxy on 127.0.0.1 in front of the operator's HTTP API that adds the
// user's token, like `kubectl proxy`, and opens the web view (/ui/). It passes reads only: a page
// on another site that the browser lets reach 127.0.0.1 cannot invoke, deploy or delete with the
// user's token, and a Host other than the proxy's own (DNS rebinding) is refused.
import { spawn } from "node:child_process";
import { type IncomingMessage, type ServerResponse, createServer, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { CliError } from "./cluster.js";

export interface ProxyTarget {
  url: string;
  token?: string;
}

/** Headers the proxy passes on; the rest (cookies, the browser's own Authorization) stay behind. */
const PASSED_HEADERS = [
  "accept",
  "accept-encoding",
  "accept-language",
  "cache-control",
  "last-event-id",
  "if-none-match",
];

export type Verdict = { ok: true; path: string } | { ok: false; status: number; message: string };

/** Whether the proxy forwards a request: reads only, addressed to the proxy by its own name. */
export function admit(
  method: string | undefined,
  url: string | undefined,
  host: string | undefined,
  port: number,
): Verdict {
  const hosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]);
  if (!host || !hosts.has(host.toLowerCase()))
    return {
      ok: false,
      status: 421,
      message: `the Trellis UI proxy answers only as 127.0.0.1:${port} or localhost:${port}`,
    };
  if (method !== "GET" && method !== "HEAD")
    return { ok: false, status: 405, message: `the Trellis UI proxy passes reads only (GET, HEAD), not ${method}` };
  if (!url || !url.startsWith("/") || url.startsWith("//"))
    return { ok: false, status: 400, message: "the request path must start with a single /" };
  if (url === "/" || url === "") return { ok: true, path: "/ui/" };
  return { ok: true, path: url };
}

/** The headers sent to the operator: the passed ones plus the user's token. */
export function upstreamHeaders(
  incoming: IncomingMessage["headers"],
  token: string | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASSED_HEADERS) {
    const v = incoming[name];
    if (typeof v === "string") out[name] = v;
  }
  if (token) out.authorization = `Bearer ${token}`;
  return out;
}

function refuse(res: ServerResponse, status: number, message: string) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ code: "proxy_refused", message }));
}

export async function startUiProxy(
  target: ProxyTarget,
  port: number,
): Promise<{ url: string; close: () => Promise<void> }> {
  const base = new URL(target.url);
  const send = base.protocol === "https:" ? httpsRequest : httpRequest;
  const prefix = base.pathname.replace(/\/$/, "");
  let bound = port;
  const server = createServer((req, res) => {
    const v = admit(req.method, req.url, req.headers.host, bound);
    if (!v.ok) return refuse(res, v.status, v.message);
    if (req.url === "/" || req.url === "") {
      res.writeHead(302, { location: "/ui/" });
      return res.end();
    }
    const up = send(
      {
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port,
        method: req.method,
        path: prefix + v.path,
        headers: upstreamHeaders(req.headers, target.token),
      },
      (r) => {
        const headers = { ...r.headers };
        delete headers["set-cookie"];
        res.writeHead(r.statusCode ?? 502, headers);
        r.pipe(res); // streams: the page's server-sent events pass as they come
      },
    );
    up.on("error", (e) => {
      if (!res.headersSent) refuse(res, 502, `the Trellis HTTP API at ${target.url} does not answer: ${e.message}`);
      else res.destroy();
    });
    req.on("close", () => {
      if (!res.writableEnded) up.destroy();
    });
    up.end();
  });
  await new Promise<void>((done, fail) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      fail(new CliError(`--port ${port}: cannot listen on 127.0.0.1:${port} (${e.code ?? e.message})`)),
    );
    server.listen(port, "127.0.0.1", done);
  });
  bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}/ui/`,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

/** Opens a URL in the desktop's browser when there is one; says so otherwise. */
function openBrowser(url: string): void {
  const opener = process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
  const child = spawn(opener, [url], { stdio: "ignore", detached: true });
  child.on("error", () => process.stderr.write(`(no ${opener} here: open ${url} in a browser)\n`));
  child.unref();
}

export async function ui(target: ProxyTarget, opts: { port: number; open: boolean }): Promise<number> {
  if (!target.url)
    throw new CliError(
      "ui needs the operator's HTTP API: pass --api URL or set TRELLIS_API_URL (e.g. kubectl port-forward -n trellis-system svc/trellis 8080 and --api http://127.0.0.1:8080)",
    );
  let protocol = "";
  try {
    protocol = new URL(target.url).protocol;
  } catch {
    // reported below
  }
  if (protocol !== "http:" && protocol !== "https:")
    throw new CliError(`--api ${JSON.stringify(target.url.slice(0, 300))}: must be an http:// or https:// URL`);
  const proxy = await startUiProxy(target, opts.port);
  process.stdout.write(`Serving the Trellis UI at ${proxy.url} (proxying ${target.url}; Ctrl-C to stop)\n`);
  if (opts.open) openBrowser(proxy.url);
  await new Promise<void>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  await proxy.close();
  return 0;
}
