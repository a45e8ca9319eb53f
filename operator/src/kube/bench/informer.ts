// Watch latency: how long after a write returns does the informer deliver the event? This is
// the floor of the operator's reaction time (status persisted → dependent reconciled).
//   npx tsx operator/src/kube/bench/informer.ts [--n 1000] [--concurrency 16]
import { randomBytes } from "node:crypto";
import { KubeClient, loadKubeConfig } from "../client.js";
import { createInformer } from "../informer.js";
import type { KubeObject } from "../types.js";
import { KubeObjectWriter } from "../writer.js";
import { API_VERSION } from "../../../../protocol/index.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const N = Number(arg("n", "1000"));
const C = Number(arg("concurrency", "16"));

const client = await KubeClient.create(loadKubeConfig(process.env.KUBECONFIG));
const writer = new KubeObjectWriter(client);
const ns = `kube-bench-${randomBytes(3).toString("hex")}`;
await writer.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });

const inf = createInformer<KubeObject>(client, {
  apiVersion: API_VERSION,
  kind: "FunctionCall",
  namespace: ns,
});
const added = new Map<string, number>();
const modified = new Map<string, number>();
inf.onEvent((type, o) => {
  const t = performance.now();
  if (type === "ADDED") added.set(o.metadata.name!, t);
  if (type === "MODIFIED") modified.set(o.metadata.name!, t);
});
await inf.start();

const createdAt = new Map<string, number>();
const patchedAt = new Map<string, number>();
const names = Array.from({ length: N }, (_, i) => `w${i}`);
let next = 0;
await Promise.all(
  Array.from({ length: C }, async () => {
    while (next < names.length) {
      const name = names[next++]!;
      await writer.create({
        apiVersion: API_VERSION,
        kind: "FunctionCall",
        metadata: { namespace: ns, name },
        spec: { application: "bench", function: "f", args: [{ value: 1 }] },
      } as KubeObject);
      createdAt.set(name, performance.now());
      await writer.patchStatus(
        { apiVersion: API_VERSION, kind: "FunctionCall", namespace: ns, name },
        { phase: "Running" },
      );
      patchedAt.set(name, performance.now());
    }
  }),
);
const deadline = Date.now() + 30_000;
while ((added.size < N || modified.size < N) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

const lags = (events: Map<string, number>, writes: Map<string, number>) => {
  const xs = names.map((n) => events.get(n)! - writes.get(n)!).sort((a, b) => a - b);
  const q = (p: number) => Number(xs[Math.min(xs.length - 1, Math.floor(xs.length * p))]!.toFixed(2));
  return { p50Ms: q(0.5), p99Ms: q(0.99), maxMs: q(1) };
};
console.log(
  JSON.stringify({
    n: N,
    concurrency: C,
    // negative: the event arrived before the write's own response
    createToAddedEvent: lags(added, createdAt),
    statusPatchToModifiedEvent: lags(modified, patchedAt),
    informer: inf.stats,
  }),
);
await inf.stop();
await client.request("DELETE", `/api/v1/namespaces/${ns}`);
client.close();
