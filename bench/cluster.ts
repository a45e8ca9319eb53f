// The bench's view of the local cluster: other operators, process groups for CPU figures, requests
// and the FunctionCalls of a request (read with the operator's own client).
import { execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { API_VERSION, type FunctionCall, expandShards, newRequest } from "../protocol/index.js";
import type { KubeClient } from "../operator/src/kube/client.js";
import type { KubeObjectWriter } from "../operator/src/kube/writer.js";
import { resourcePath } from "../operator/src/kube/resources.js";
import type { KubeObject } from "../operator/src/kube/types.js";
import { kubectl } from "../test/support/kube.js";
import { metricsPortFor } from "../test/support/helm.js";
import type { ProcessGroups } from "./stats.js";

export type Call = FunctionCall & KubeObject;

/** Operators started from the source tree by anyone but this process. */
export function otherOperators(): number[] {
  let out: string;
  try {
    out = execFileSync("pgrep", ["-f", "operator/src/main.ts"], { encoding: "utf8" });
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
  return out
    .split("\n")
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== process.pid && pid !== process.ppid);
}

/** vitest runs of the end-to-end suite (they start an operator per test file). */
function e2eRuns(): number[] {
  try {
    return execFileSync("pgrep", ["-f", "vitest.* --project e2e"], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Waits until no other operator and no e2e run is there (an e2e test owns the cluster meanwhile). */
export async function waitForClusterFree(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    const pids = [...otherOperators(), ...e2eRuns()];
    if (pids.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `another Trellis operator or e2e run is there (pids ${pids.join(", ")}): npm run bench expects to own the cluster; ` +
          `stop the e2e suite or wait for it (TRELLIS_BENCH_WAIT_SECONDS)`,
      );
    }
    if (!told) console.error(`waiting for ${pids.join(", ")} to exit (an e2e run or another operator)`);
    told = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/**
 * Waits while namespaces are still being deleted (an earlier run's, an e2e suite's): the namespace
 * controller deleting thousands of calls loads the apiserver and skews every latency measured.
 */
export async function waitForTerminatingNamespaces(client: KubeClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    const list = await client.request<{ items: { metadata: { name: string }; status?: { phase?: string } }[] }>(
      "GET",
      "/api/v1/namespaces",
    );
    const terminating = list.items.filter((n) => n.status?.phase === "Terminating").map((n) => n.metadata.name);
    if (terminating.length === 0) return;
    if (Date.now() > deadline) {
      console.error(
        `namespaces still terminating after ${timeoutMs / 1000} s, measuring anyway: ${terminating.join(", ")}`,
      );
      return;
    }
    if (!told) console.error(`waiting for terminating namespaces to go: ${terminating.join(", ")}`);
    told = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Creates an Application whose code is inline `source` (the bench's apps, bench/apps.ts). */
export async function deployInlineApp(
  writer: KubeObjectWriter,
  namespace: string,
  app: { name: string; entrypoint: string; source: string; functions: object[] },
): Promise<void> {
  await writer.create({
    apiVersion: API_VERSION,
    kind: "Application",
    metadata: { name: app.name, namespace },
    spec: { entrypoint: app.entrypoint, source: { inline: app.source }, functions: app.functions },
  } as never);
}

/** The processes whose CPU the bench reports: this cluster's apiserver and etcd, the operator, the pods. */
export function processGroups(
  apiPort: string,
  clusterDir: string,
  operatorPid: () => number | undefined,
): ProcessGroups {
  return {
    apiserver: (cmd) => cmd.includes("kube-apiserver") && cmd.includes(`--secure-port=${apiPort}`),
    etcd: (cmd) => /\betcd\b/.test(cmd.split(" ")[0] ?? "") && cmd.includes(clusterDir),
    operator: (_cmd, pid) => pid === operatorPid(),
    sidecars: (cmd) => cmd.includes("sidecar.mjs"),
    workers: (cmd) => cmd.includes("trellis.worker"),
    bench: (_cmd, pid) => pid === process.pid,
  };
}

/** The operator this process spawned (a direct child running main.ts). */
export function childOperatorPid(): number | undefined {
  try {
    const out = execFileSync(
      "pgrep",
      ["-P", String(process.pid), "-f", "operator/src/main\\.ts|/bench/operator-[a-z]+\\.mjs"],
      { encoding: "utf8" },
    );
    const pid = Number(out.split("\n")[0]);
    return Number.isFinite(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const fcPath = (namespace: string, name?: string) =>
  resourcePath({ apiVersion: API_VERSION, kind: "FunctionCall", namespace, name });

/** Creates a request (root FunctionCall) with the given JSON args; returns its name. */
export async function createRequest(client: KubeClient, namespace: string, app: string, fn: string, args: unknown[]) {
  const name = `b${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const root = newRequest({ namespace, application: app, function: fn, name, args: args.map((value) => ({ value })) });
  await client.request("POST", fcPath(namespace), { body: root });
  return name;
}

/** Polls the root until it finishes (100 ms apart, so the polling adds little apiserver load). */
export async function waitFinished(
  client: KubeClient,
  namespace: string,
  name: string,
  timeoutMs: number,
  check: () => void = () => {},
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    check();
    const c = await client.request<Call>("GET", fcPath(namespace, name));
    const phase = c.status?.phase;
    if (phase === "Succeeded") return c;
    if (phase === "Failed" || phase === "Cancelled") {
      throw new Error(`request ${namespace}/${name} ${phase}: ${JSON.stringify(c.status?.error)}`);
    }
    if (Date.now() > deadline) throw new Error(`request ${namespace}/${name} not finished after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every FunctionCall of a request except the root. */
export async function childrenOf(client: KubeClient, namespace: string, request: string): Promise<Call[]> {
  const list = await client.request<{ items: Call[] }>("GET", fcPath(namespace), {
    query: { labelSelector: `trellis.dev/request=${request}` },
  });
  // A large map's items are in shards: each item as a call of its own.
  return expandShards(list.items.filter((c) => c.metadata.name !== request));
}

export const ms = (iso: string | undefined): number => (iso ? Date.parse(iso) : NaN);

/** Sum (s) and count of the operator's trellis_dispatch_latency_seconds for one function. */
export async function dispatchLatency(httpPort: string, fn: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPortFor(Number(httpPort))}/metrics`)).text();
  const pick = (suffix: string) => {
    const line = text
      .split("\n")
      .find((l) => l.startsWith(`trellis_dispatch_latency_seconds_${suffix}{`) && l.includes(`function="${fn}"`));
    return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
  };
  return { sum: pick("sum"), count: pick("count") };
}

/** Rejects when something already listens on 127.0.0.1:port (an operator still shutting down). */
export function portFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", (e) =>
      reject(
        new Error(
          `port 127.0.0.1:${port} is in use (${String(e)}); set TRELLIS_E2E_HTTP_PORT / TRELLIS_E2E_RUNTIME_PORT`,
        ),
      ),
    );
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve()));
  });
}

/**
 * The operator's event-loop delay since the previous scrape (prom-client resets its histogram on
 * every scrape): how long ready work could wait for the operator's thread.
 */
export async function eventLoopLag(httpPort: string): Promise<{ p99Ms: number; maxMs: number }> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPortFor(Number(httpPort))}/metrics`)).text();
  const value = (name: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${name} `));
    return line ? Math.round(Number(line.slice(name.length + 1)) * 1e5) / 100 : NaN;
  };
  return {
    p99Ms: value("trellis_nodejs_eventloop_lag_p99_seconds"),
    maxMs: value("trellis_nodejs_eventloop_lag_max_seconds"),
  };
}

/**
 * FunctionCall writes the apiserver counted (apiserver_request_total, every client): creates,
 * status patches and other writes. Deltas over a phase give the writes per call.
 */
export async function apiserverCallWrites(): Promise<{ creates: number; statusPatches: number; otherWrites: number }> {
  const text = await kubectl(["get", "--raw", "/metrics"]);
  const out = { creates: 0, statusPatches: 0, otherWrites: 0 };
  for (const line of String(text).split("\n")) {
    if (!line.startsWith("apiserver_request_total{") || !line.includes('resource="functioncalls"')) continue;
    const kind = writeKind(/verb="([A-Z]+)"/.exec(line)?.[1] ?? "", /subresource="([a-z]*)"/.exec(line)?.[1] ?? "");
    if (kind) out[kind] += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return out;
}

/** Which of apiserverCallWrites' counters a request of `verb` on `subresource` adds to (reads: none). */
function writeKind(verb: string, subresource: string): "creates" | "statusPatches" | "otherWrites" | undefined {
  if (verb === "POST") return "creates";
  const update = verb === "PATCH" || verb === "PUT";
  if (update && subresource === "status") return "statusPatches";
  if (update || verb === "DELETE" || verb === "DELETECOLLECTION") return "otherWrites";
  return undefined;
}
