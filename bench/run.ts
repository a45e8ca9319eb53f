// npm run bench: figures of the operator on the local cluster, baselines and measurements from the
// same run. Expects to own the cluster: it waits while another operator (an e2e test) runs, then
// starts its own operator from the source tree on its own ports, watching only its namespace.
//   flags: --chain 200 --dependents 200 --map 10000 --raw 200 --tail 1000 --tail-deep 10000
//   [--compare <git-rev>] [--ui] [--data-plane] [--large] [--tail-only]
// --ui: only the web view's figures (bench/ui.ts: 10,000 calls, no cluster); a full run adds them last.
// --data-plane: only the object store's figure (bench/data-plane.ts: a 200 x 1 MiB map and reduce
// against a plain S3 client moving the same bytes; then a --file-mib 1024 MiB File through the HTTP
// API and a function, with the operator's RSS).
// --large: only the large maps (bench/large-map.ts: --large-map 100000 items with the operator's
// RSS and the request's objects; --durable-map 20000 items with the operator SIGKILLed and an item
// pod force-deleted mid-map, executions counted); a full run adds them after the operator phases.
// --tail 1000 --tail-deep 10000: tail chains (bench/tail-chain.ts: link k returns a future of link
// k-1), timed end to end and per link against the raw writes one link needs (--raw links, before
// and after), with the operator's RSS; a full run adds them after the operator phases (0 skips one).
// --tail-only: only the tail chains and their raw baselines.
// --compare: the operator phases run first against <git-rev>'s operator (a worktree in /tmp), then
// against this tree's, each in a fresh namespace; the report adds a comparison table.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { KubeClient, loadKubeConfig } from "../operator/src/kube/client.js";
import { KubeObjectWriter } from "../operator/src/kube/writer.js";
import { clusterDir, kubeconfigPath, repoRoot } from "../test/support/kube.js";
import { type BaselineTree, checkoutBaseline } from "./baseline.js";
import {
  type BenchOperator,
  type OperatorSpec,
  createNamespace,
  deleteNamespace,
  deleteNamespaceAndWait,
  operatorSpec,
  startBenchOperator,
} from "./bench-operator.js";
import { childOperatorPid, processGroups, waitForClusterFree, waitForTerminatingNamespaces } from "./cluster.js";
import { type CompareResults, printComparison } from "./compare-report.js";
import { type RawBaselines, comparedFigures, operatorSections, ratios } from "./figures.js";
import { Measurer, type Phases } from "./measure.js";
import { type OperatorRun, type PhaseContext, runOperatorPhases } from "./operator-phases.js";
import { type RawWrites, rawWrites, rawWritesConcurrent } from "./raw-writes.js";
import { printHeader, printPhases, printReport, printRows } from "./report.js";
import { type TailResults, tailPhases, tailRows, tailSections } from "./tail-chain.js";
import { printUiFigures, uiFigures } from "./ui.js";
import { bigFileFigures, dataPlaneFigures, printBigFileFigures, printDataPlaneFigures } from "./data-plane.js";
import {
  type DurableMapFigures,
  type LargeMapFigures,
  durableMapFigures,
  largeMapFigures,
  printDurableMapFigures,
  printLargeMapFigures,
} from "./large-map.js";

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const compareArg = () => {
  const i = process.argv.indexOf("--compare");
  if (i < 0) return undefined;
  const rev = process.argv[i + 1];
  if (!rev || rev.startsWith("--")) throw new Error("--compare needs a git revision (a commit, HEAD~5, a tag)");
  return rev;
};
const N_RAW = arg("raw", 200);
const N_CHAIN = arg("chain", 200);
const N_DEP = arg("dependents", 200);
const N_MAP = arg("map", 10000);
const N_LARGE_MAP = arg("large-map", 100000);
const N_DURABLE_MAP = arg("durable-map", 20000);
const TAIL_SIZES = { tail: arg("tail", 1000), deep: arg("tail-deep", 10000), raw: N_RAW };
const COMPARE = compareArg();

if (process.argv.includes("--ui")) {
  printUiFigures(await uiFigures());
  process.exit(0);
}

// Ports of the bench's own operator (operator.ts reads them when imported).
process.env.TRELLIS_E2E_RUNTIME_PORT ??= "28081";
process.env.TRELLIS_E2E_HTTP_PORT ??= "28080";
process.env.KUBECONFIG = kubeconfigPath();

await waitForClusterFree(Number(process.env.TRELLIS_BENCH_WAIT_SECONDS ?? 600) * 1000);

const kc = loadKubeConfig(process.env.KUBECONFIG);
const client = await KubeClient.create(kc, { userAgent: "trellis-bench" });
const writer = new KubeObjectWriter(client, "trellis-bench");
await waitForTerminatingNamespaces(client, 300_000);
const apiPort = new URL(kc.getCurrentCluster()!.server).port || "443";
const groups = processGroups(apiPort, clusterDir(), childOperatorPid);
const httpPort = process.env.TRELLIS_E2E_HTTP_PORT!;

const tag = Math.random().toString(36).slice(2, 7);
const rawNs = `bench-raw-${tag}`;
const currentSpec = operatorSpec("current", repoRoot, `bench-${tag}`);
// The baseline's worktree is removed by cleanup() (also on SIGINT/SIGTERM).
let baseline: BaselineTree | undefined;
let active: BenchOperator | undefined;
const measurer = new Measurer(groups, httpPort);
const namespaces = new Set<string>();
// One cleanup, awaited by both the signal handler and the main flow: stopping the operator makes
// the phase under way fail, and that error must not end the process before the cleanup is done.
let cleaning: Promise<void> | undefined;
const cleanup = () =>
  (cleaning ??= (async () => {
    measurer.stop();
    await active?.stop();
    baseline?.remove();
    for (const name of namespaces) await deleteNamespace(writer, name);
    client.close();
  })());
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.once(sig, () => void cleanup().finally(() => process.exit(130)));

/** Starts the operator of `spec`, runs `fn` against it, stops it. */
async function withOperator<T>(spec: OperatorSpec, fn: (op: BenchOperator) => Promise<T>): Promise<T> {
  active = await startBenchOperator(spec);
  try {
    return await fn(active);
  } finally {
    await active.stop();
    active = undefined;
  }
}

const phases: Phases = {};
const ctx: PhaseContext = {
  client,
  writer,
  measurer,
  httpPort,
  sizes: { chain: N_CHAIN, dependents: N_DEP, map: N_MAP },
  rawBlock: (n, tag) => rawWrites(writer, rawNs, n, tag),
};
const rawPhase = <T>(name: string, fn: () => Promise<T>) => measurer.measure(phases, name, fn);
// The raw writes before run with the first operator started (idle), as without --compare.
let rawBefore: RawWrites | undefined;
const rawBeforeOnce = async () => {
  rawBefore ??= await rawPhase("rawWritesBefore", () => rawWrites(writer, rawNs, N_RAW, "before"));
};

/** --compare: the baseline operator's phases, in their own namespace, gone before the current ones. */
async function baselineRun(tree: BaselineTree): Promise<OperatorRun> {
  const spec = operatorSpec("baseline", tree.root, `bench-base-${tag}`);
  await createNamespace(writer, spec.namespace);
  namespaces.add(spec.namespace);
  const run = await withOperator(spec, async (op) => {
    await rawBeforeOnce();
    return runOperatorPhases(ctx, op, {});
  });
  console.error(`deleting ${spec.namespace} and waiting until it is gone (pods and FunctionCalls)`);
  await deleteNamespaceAndWait(client, writer, spec.namespace);
  namespaces.delete(spec.namespace);
  return run;
}

function compareResults(tree: BaselineTree, base: OperatorRun, current: OperatorRun, raw: RawBaselines) {
  const baseSections = operatorSections(base, raw);
  const baseFigures = comparedFigures(baseSections, base);
  const currentFigures = comparedFigures(operatorSections(current, raw), current);
  const out: CompareResults = {
    rev: tree.rev,
    commit: tree.commit,
    short: tree.short,
    order:
      `the baseline operator's phases ran first, then the current tree's, each in a fresh namespace ` +
      `(the first one gone, pods and FunctionCalls, before the second started); raw writes before ran ` +
      `with the baseline operator idle, after and map with the current one`,
    baseline: baseFigures,
    current: currentFigures,
    ratios: ratios(baseFigures, currentFigures),
    baselineDetail: { ...baseSections, namespace: base.namespace, phases: base.phases, operatorLog: base.operatorLog },
  };
  return out;
}

if (process.argv.includes("--data-plane")) {
  await createNamespace(writer, currentSpec.namespace);
  namespaces.add(currentSpec.namespace);
  try {
    const [f, big] = await withOperator(currentSpec, async (op) => [
      await dataPlaneFigures(client, writer, currentSpec.namespace, op),
      await bigFileFigures(writer, currentSpec.namespace, Number(httpPort), arg("file-mib", 1024) * 1024 * 1024),
    ]);
    printDataPlaneFigures(f);
    printBigFileFigures(big);
  } finally {
    await cleanup();
  }
  process.exit(0);
}

/** The large maps, one after the other in the bench's namespace (0 items: skipped). */
async function largeMaps(op: BenchOperator): Promise<{ large?: LargeMapFigures; durable?: DurableMapFigures }> {
  const out: { large?: LargeMapFigures; durable?: DurableMapFigures } = {};
  if (N_LARGE_MAP > 0)
    out.large = await largeMapFigures(client, writer, currentSpec.namespace, op, Number(httpPort), N_LARGE_MAP);
  if (N_DURABLE_MAP > 0)
    out.durable = await durableMapFigures(client, writer, currentSpec.namespace, op, N_DURABLE_MAP);
  return out;
}

function printLargeMaps(f: { large?: LargeMapFigures; durable?: DurableMapFigures }): void {
  if (f.large) printLargeMapFigures(f.large);
  if (f.durable) printDurableMapFigures(f.durable);
}

if (process.argv.includes("--large")) {
  await createNamespace(writer, currentSpec.namespace);
  namespaces.add(currentSpec.namespace);
  try {
    printLargeMaps(await withOperator(currentSpec, largeMaps));
  } finally {
    await cleanup();
  }
  process.exit(0);
}

for (const name of [currentSpec.namespace, rawNs]) {
  await createNamespace(writer, name);
  namespaces.add(name);
}
const t0 = Date.now();
const loadavgAtStart = loadavg();
const writeResults = (results: { at: string }) => {
  const dir = join(repoRoot, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${results.at.replace(/[:.]/g, "-")}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  return file;
};
const runTail = (op: BenchOperator): Promise<TailResults | undefined> =>
  TAIL_SIZES.tail > 0 || TAIL_SIZES.deep > 0
    ? tailPhases(client, writer, measurer, phases, op, Number(httpPort), rawNs, TAIL_SIZES)
    : Promise.resolve(undefined);

if (process.argv.includes("--tail-only")) {
  try {
    const { t, operatorLog } = await withOperator(currentSpec, async (op) => ({
      t: await runTail(op),
      operatorLog: op.logPath,
    }));
    if (!t) throw new Error("--tail-only with --tail 0 --tail-deep 0: nothing to run");
    const tail = tailSections(t, phases);
    const results = {
      at: new Date().toISOString(),
      durationSeconds: Math.round((Date.now() - t0) / 1000),
      machine: { cpus: cpus().length, loadavgAtStart, loadavgAtEnd: loadavg() },
      otherOperatorsDuringRun: [...measurer.intruders],
      tail,
      phases,
      operatorLog,
    };
    const file = writeResults(results);
    printHeader(results);
    printRows(tailRows(tail));
    printPhases(phases);
    console.log(`\nJSON: ${file}`);
  } finally {
    await cleanup();
  }
  process.exit(0);
}
try {
  if (COMPARE) baseline = checkoutBaseline(COMPARE);
  const base = baseline ? await baselineRun(baseline) : undefined;
  const { current, rawAfter, rawMap, tailRun, large } = await withOperator(currentSpec, async (op) => {
    await rawBeforeOnce();
    const current = await runOperatorPhases(ctx, op, phases);
    const rawAfter = await rawPhase("rawWritesAfter", () => rawWrites(writer, rawNs, N_RAW, "after"));
    const rawMap = await rawPhase("rawWritesMap", () => rawWritesConcurrent(writer, rawNs, N_MAP, 64, "map"));
    const tailRun = await runTail(op);
    const large = await largeMaps(op);
    return { current, rawAfter, rawMap, tailRun, large };
  });
  const before = rawBefore!;
  const raw: RawBaselines = {
    before,
    after: rawAfter,
    perCallMs: (before.perCallMs.mean + rawAfter.perCallMs.mean) / 2,
    map: rawMap,
  };
  const compare = baseline && base ? compareResults(baseline, base, current, raw) : undefined;
  const results = {
    at: new Date().toISOString(),
    durationSeconds: Math.round((Date.now() - t0) / 1000),
    machine: { cpus: cpus().length, loadavgAtStart, loadavgAtEnd: loadavg() },
    // Non-empty: another operator ran during the bench and the figures are not valid.
    otherOperatorsDuringRun: [...measurer.intruders],
    rawWrites: { before, after: rawAfter, perCallMeanMs: Math.round(raw.perCallMs * 100) / 100 },
    ...operatorSections(current, raw),
    ...(tailRun ? { tail: tailSections(tailRun, phases) } : {}),
    phases,
    operatorLog: current.operatorLog,
    largeMaps: large,
    ...(compare ? { compare } : {}),
  };
  const file = writeResults(results);
  printReport(results);
  printLargeMaps(large);
  if (compare) printComparison(compare);
  // The web view's figures need no cluster; after the operator's, so they do not disturb them.
  printUiFigures(await uiFigures());
  console.log(`\nJSON: ${file}`);
} finally {
  await cleanup();
}
