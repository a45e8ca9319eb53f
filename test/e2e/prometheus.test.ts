// Prometheus from Debian scrapes the operator's /metrics while a seed example runs on the local
// cluster; PromQL over Prometheus's HTTP API then returns the request's call count and a
// dispatch latency histogram with samples.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { metricsPortFor, waitNoOtherOperator } from "../support/helm.js";
import { createNamespace, deleteNamespace, waitFor } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { appName, deployApp, invoke, requestCalls, seedCases, waitFinished } from "./support/trellis.js";

// /metrics has its own port (the HTTP API's port answers 404 there).
const OPERATOR_HTTP_PORT = Number(process.env.TRELLIS_E2E_HTTP_PORT ?? 18080);
const OPERATOR_METRICS_PORT = metricsPortFor(OPERATOR_HTTP_PORT);
const { cases, sources } = seedCases();
const seed = cases.find((c) => c.file === "ex04_map_reduce.py")!;

let op: OperatorProcess | undefined;
let prom: ChildProcess | undefined;
let promUrl = "";
let ns = "";
const dir = mkdtempSync(join(tmpdir(), "trellis-prometheus-"));

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

const promLog = () => {
  try {
    return readFileSync(join(dir, "prometheus.log"), "utf8").split("\n").slice(-20).join("\n");
  } catch {
    return "(no log)";
  }
};

/** One PromQL instant query; the value of each series. */
async function query(expr: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await r.json()) as {
    status: string;
    error?: string;
    data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  if (body.status !== "success") throw new Error(`query ${expr}: ${body.error}`);
  return body.data!.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
}

beforeAll(async () => {
  try {
    execFileSync("prometheus", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("prometheus is not installed: run scripts/cluster/deps.sh (Debian package prometheus)");
  }
  await waitNoOtherOperator();
  op = await startOperator("prometheus");
  ns = await createNamespace("prom");

  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, "prometheus.yml"),
    stringify({
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      scrape_configs: [{ job_name: "trellis", static_configs: [{ targets: [`127.0.0.1:${OPERATOR_METRICS_PORT}`] }] }],
    }),
  );
  const log = openSync(join(dir, "prometheus.log"), "a");
  prom = spawn(
    "prometheus",
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ["ignore", log, log] },
  );
  closeSync(log);
  await waitFor(`Prometheus ready on ${promUrl}`, async () => {
    if (prom?.exitCode !== null) throw new Error(`prometheus exited with ${prom?.exitCode}: ${promLog()}`);
    const r = await fetch(`${promUrl}/-/ready`).catch(() => undefined);
    return r?.ok ? true : undefined;
  });
  await deployApp(ns, appName(seed.file), sources[seed.file]!, seed.app);
});

afterAll(async () => {
  const p = prom;
  if (p && p.exitCode === null) {
    const exited = new Promise((r) => p.once("exit", r));
    process.kill(p.pid!, "SIGTERM");
    await exited;
  }
  await deleteNamespace(ns);
  await op?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("Prometheus scraping the operator", () => {
  it("counts the calls of a request and records dispatch and request latency", async () => {
    const up = await waitFor("the operator's target to be up", async () => {
      const r = await query('up{job="trellis"}');
      return r[0]?.value === 1 ? r : undefined;
    });
    expect(up).toHaveLength(1);
    expect((await fetch(`http://127.0.0.1:${OPERATOR_HTTP_PORT}/metrics`)).status).toBe(404);

    const req = await invoke(ns, appName(seed.file), seed.app, seed.args);
    const status = await waitFinished(ns, req).catch((e: Error) => {
      throw new Error(`${e.message}\noperator log ${op?.logPath}:\n${op?.tail()}`);
    });
    expect(status.phase).toBe("Succeeded");
    expect(status.output?.value).toEqual(seed.expected);
    const calls = await requestCalls(ns, req);
    expect(calls.every((c) => c.status.phase === "Succeeded")).toBe(true);
    expect(calls.length).toBeGreaterThan(4); // the root, the map, its items, the reduce steps

    // Every finished call counted once, by the scrape after the last one finished.
    const app = appName(seed.file);
    const total = `sum(trellis_function_calls_total{job="trellis",namespace="${ns}",phase="Succeeded"})`;
    await waitFor(
      `${total} to reach ${calls.length}`,
      async () => ((await query(total))[0]?.value === calls.length ? true : undefined),
      30_000,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}; got ${JSON.stringify(await query(total))}`);
    });
    const byFunction = await query(
      `sum by (function) (trellis_function_calls_total{job="trellis",namespace="${ns}",phase="Succeeded"})`,
    );
    const expected = new Map<string, number>();
    for (const c of calls) expected.set(c.fn, (expected.get(c.fn) ?? 0) + 1);
    expect(new Map(byFunction.map((s) => [s.metric.function!, s.value]))).toEqual(expected);

    const dispatched = await query(`sum(trellis_dispatch_latency_seconds_count{job="trellis",application="${app}"})`);
    expect(dispatched[0]?.value).toBeGreaterThan(0);
    const requests = await query(
      `sum(trellis_request_duration_seconds_count{job="trellis",application="${app}",phase="Succeeded"})`,
    );
    expect(requests[0]?.value).toBe(1);
    expect((await query('trellis_leader{job="trellis"}'))[0]?.value).toBe(1);
    const pods = await query(`sum(trellis_pods{job="trellis",namespace="${ns}"})`);
    expect(pods[0]?.value).toBeGreaterThan(0);
    const runtimeApi = await query('sum(trellis_runtime_api_requests_total{job="trellis",code="200"})');
    expect(runtimeApi[0]?.value).toBeGreaterThan(0);
  });
});
