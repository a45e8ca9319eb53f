// Figures for the sidecar's own cost (not a test): run with
//   npx tsx runtime-image/sidecar/src/overhead.bench.ts
// 1. one operator request: node:http keep-alive (what the sidecar uses) vs the built-in fetch;
// 2. a call through sidecar + real worker against the stand-in operator (lease → assign →
//    result), and a parent making sequential children (children + wait + resolved per child).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, POD_HEADER, RUNTIME_API_PREFIX } from "../../../protocol/index.js";
import { FakeOperator } from "./fake-operator.testlib.js";
import { OperatorClient } from "./operator-client.js";
import { RuntimeApi } from "./api.js";
import { Sidecar } from "./sidecar.js";
import { startWorker } from "./worker.testlib.js";

const APP = `
from tensorlake.applications import function

@function()
def double(x: int) -> int:
    return x * 2

@function()
def chain(n: int) -> int:
    total = 0
    for i in range(n):
        total += double(i)
    return total
`;

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const fmt = (xs: number[]) =>
  `p50 ${pct(xs, 50).toFixed(3)} ms, p99 ${pct(xs, 99).toFixed(3)} ms, mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3)} ms`;

async function main(): Promise<void> {
  const op = new FakeOperator();
  await op.start();
  const log = createLogger({ level: "error" });
  const client = new OperatorClient({ url: op.url, namespace: "default", pod: "bench", token: op.token, log });
  const api = new RuntimeApi(client);
  const N = 2000;
  const body = { calls: [], draining: false };
  for (let i = 0; i < 200; i++) await api.heartbeat(body); // warm up
  let t: number[] = [];
  for (let i = 0; i < N; i++) {
    const s = performance.now();
    await api.heartbeat(body);
    t.push(performance.now() - s);
  }
  console.log(`operator request, node:http keep-alive: ${fmt(t)}`);
  const url = `${op.url}${RUNTIME_API_PREFIX}/heartbeat`;
  const headers = {
    authorization: `Bearer ${op.token}`,
    [POD_HEADER]: "default/bench",
    "content-type": "application/json",
  };
  for (let i = 0; i < 200; i++)
    await (await fetch(url, { method: "POST", headers, body: JSON.stringify(body) })).json();
  t = [];
  for (let i = 0; i < N; i++) {
    const s = performance.now();
    await (await fetch(url, { method: "POST", headers, body: JSON.stringify(body) })).json();
    t.push(performance.now() - s);
  }
  console.log(`operator request, built-in fetch:      ${fmt(t)}`);
  op.received.length = 0;
  op.heartbeats.length = 0;

  const dir = mkdtempSync(join(tmpdir(), "trellis-bench-"));
  writeFileSync(join(dir, "app.py"), APP);
  op.settings.heartbeatIntervalMs = 5_000;
  const config = {
    operatorUrl: op.url,
    podNamespace: "default",
    podName: "bench",
    token: op.token,
    function: "double",
    concurrency: 4,
    socket: join(dir, "worker.sock"),
    sdkSource: "",
    sdkDir: "",
    readyFile: join(dir, "ready"),
    workerHeartbeatMs: 5000,
    workerHeartbeatTimeoutMs: 15000,
    timeoutGraceMs: 1000,
    workerReturnMs: 1000,
    drainDeadlineSeconds: 5,
    progressIntervalMs: 250,
    logLevel: "error" as const,
  };
  const sidecar = new Sidecar({
    config,
    client: new OperatorClient({ url: op.url, namespace: "default", pod: "bench", token: op.token, log }),
    log,
    version: "bench",
  });
  await sidecar.start();
  const worker = startWorker(dir, config.socket);
  await op.until("registration", () => op.registrations.length === 1);
  const done = (name: string) => op.until(name, () => op.calls.get(name)?.phase === "Succeeded");
  t = [];
  for (let i = 0; i < 300; i++) {
    const s = performance.now();
    op.addRoot(`r${i}`, "double", [{ value: i }]);
    await done(`r${i}`);
    t.push(performance.now() - s);
  }
  console.log(`root call through sidecar + worker (lease → assign → result): ${fmt(t.slice(50))}`);
  const K = 200;
  const s = performance.now();
  op.addRoot("rchain", "chain", [{ value: K }]);
  await done("rchain");
  console.log(
    `sequential children (children + lease + assign + result + wait + resolved): ${((performance.now() - s) / K).toFixed(3)} ms per child over ${K}`,
  );
  await sidecar.drain(2);
  await worker.exited;
  client.close();
  await op.stop();
  rmSync(dir, { recursive: true, force: true });
}

void main();
