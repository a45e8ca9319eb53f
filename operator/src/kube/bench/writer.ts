// Raw API write throughput of the kube edge: FunctionCall creates and status merge patches (with
// the resourceVersion precondition) at several concurrencies, plus client-node's own request
// path for comparison. Figures, not a test:  npx tsx operator/src/kube/bench/writer.ts [--n 2000]
import { CustomObjectsApi } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { KubeClient, loadKubeConfig, shareAgent } from "../client.js";
import type { KubeObject } from "../types.js";
import { KubeObjectWriter } from "../writer.js";
import { API_VERSION } from "../../../../protocol/index.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const N = Number(arg("n", "2000"));
const LEVELS = arg("levels", "1,16,64").split(",").map(Number);
const MAX_SOCKETS = Number(arg("max-sockets", "128"));

const kc = loadKubeConfig(process.env.KUBECONFIG);
const client = await KubeClient.create(kc, { maxSockets: MAX_SOCKETS });
const writer = new KubeObjectWriter(client);
const ns = `kube-bench-${randomBytes(3).toString("hex")}`;
await writer.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });

const call = (name: string): KubeObject =>
  ({
    apiVersion: API_VERSION,
    kind: "FunctionCall",
    metadata: {
      namespace: ns,
      name,
      labels: { "trellis.dev/application": "bench", "trellis.dev/request": "r", "trellis.dev/function": "f" },
    },
    spec: { application: "bench", function: "f", args: [{ value: 1 }], kwargs: { x: { value: "y" } } },
  }) as KubeObject;

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<void>) {
  const lat: number[] = [];
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const it = items[next++]!;
        const s = performance.now();
        await fn(it);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const clientCpuUsPerRequest = Math.round((cpu.user + cpu.system) / items.length);
  lat.sort((a, b) => a - b);
  const q = (p: number) => Number(lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]!.toFixed(2));
  return {
    perSecond: Math.round(items.length / secs),
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    n: items.length,
    clientCpuUsPerRequest,
  };
}

const results: Record<string, unknown>[] = [];
for (const c of LEVELS) {
  const n = c === 1 ? Math.min(N, 500) : N;
  const names = Array.from({ length: n }, (_, i) => `c${c}-${i}`);
  const rvs = new Map<string, string>();
  const creates = await pool(names, c, async (name) => {
    const o = await writer.create(call(name));
    rvs.set(name, o.metadata.resourceVersion!);
  });
  const ref = (name: string) => ({ apiVersion: API_VERSION, kind: "FunctionCall", namespace: ns, name });
  const running = await pool(names, c, async (name) => {
    const o = await writer.patchStatus(
      { ...ref(name), resourceVersion: rvs.get(name) },
      {
        phase: "Running",
        pod: "bench-pod-0",
        attempts: 1,
        startTime: new Date().toISOString(),
      },
    );
    rvs.set(name, o.metadata.resourceVersion!);
  });
  const succeeded = await pool(names, c, async (name) => {
    await writer.patchStatus(
      { ...ref(name), resourceVersion: rvs.get(name) },
      {
        phase: "Succeeded",
        output: { value: 42 },
        completionTime: new Date().toISOString(),
      },
    );
  });
  const row = { concurrency: c, creates, statusPatches: { running, succeeded } };
  results.push(row);
  console.error(JSON.stringify(row));
}

// client-node's generated client for the same creates: as shipped (one https.Agent, and so one
// TLS handshake, per request in 1.x), and with shareAgent() (one keep-alive agent).
const comparison: Record<string, unknown>[] = [];
for (const [label, api] of [
  ["default", kc.makeApiClient(CustomObjectsApi)],
  ["sharedAgent", shareAgent(loadKubeConfig(process.env.KUBECONFIG)).makeApiClient(CustomObjectsApi)],
] as const) {
  for (const c of [1, 16]) {
    const names = Array.from({ length: 300 }, (_, i) => `cn-${label}-${c}-${i}`.toLowerCase());
    const creates = await pool(names, c, async (name) => {
      await api.createNamespacedCustomObject({
        group: "trellis.dev",
        version: "v1alpha1",
        namespace: ns,
        plural: "functioncalls",
        body: call(name),
      });
    });
    comparison.push({ agent: label, concurrency: c, creates });
    console.error(JSON.stringify({ clientNode: { agent: label, concurrency: c, creates } }));
  }
}

await client.request("DELETE", `/api/v1/namespaces/${ns}`);
client.close();
const loadAverage = (await import("node:os")).loadavg().map((x) => Number(x.toFixed(1)));
console.log(
  JSON.stringify({ maxSockets: MAX_SOCKETS, loadAverage, trellisClient: results, clientNode: comparison }, null, 2),
);
