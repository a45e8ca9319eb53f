// Tail chains: a root that returns a future of link n-1, link k a future of link k-1, link 0 a
// value (bench/apps.ts TAIL_SOURCE). Each link completes at once (Delegated) and the operator runs
// its tail; the root moves on to each newest link and the passed links are settled (they leave
// the operator's memory), so when link 0 succeeds the root takes its output with one write.
// Timed end to end (root created → root Succeeded) and per link from the calls' status times;
// baseline: the writes one link needs (create, Running, Delegated, Succeeded) by a plain client,
// one link after another, before and after. The operator's RSS is sampled throughout (/proc).
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import type { KubeClient } from "../operator/src/kube/client.js";
import type { KubeObjectWriter } from "../operator/src/kube/writer.js";
import { metricsPortFor } from "../test/support/helm.js";
import { LABEL } from "../protocol/index.js";
import { TAIL_SOURCE } from "./apps.js";
import type { BenchOperator } from "./bench-operator.js";
import {
  type Call,
  childOperatorPid,
  childrenOf,
  createRequest,
  deployInlineApp,
  ms,
  waitFinished,
} from "./cluster.js";
import type { Measurer, Phases } from "./measure.js";
import { type RawTailLinks, rawTailLinks } from "./raw-writes.js";
import { type Summary, summarize } from "./stats.js";

const r2 = (x: number) => Math.round(x * 100) / 100;
const r1 = (x: number) => Math.round(x * 10) / 10;

/** VmRSS of a process in MiB (/proc/<pid>/status), NaN when it is gone. */
export function vmRssMiB(pid: number): number {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? NaN : Number(kb) / 1024;
  } catch {
    return NaN;
  }
}

/** The operator's V8 heap in use (its own metric), MiB; NaN when the scrape fails. */
async function heapUsedMiB(httpPort: number): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPortFor(httpPort)}/metrics`)).text();
    return r1(Number(/^trellis_nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1]) / (1024 * 1024));
  } catch {
    return NaN;
  }
}

export interface RssFigures {
  pid: number;
  startMiB: number;
  peakMiB: number;
  endMiB: number;
  /** V8 heap in use (trellis_nodejs_heap_size_used_bytes) when the chain was created and when it ended. */
  heapUsedStartMiB: number;
  heapUsedEndMiB: number;
  /** [seconds since start, MiB], at most ~120 points (sampled every 100 ms). */
  timeline: [number, number][];
}

/** Samples the operator's RSS every 100 ms until stopped. */
function rssSampler(pid: number): { stop(): Omit<RssFigures, "heapUsedStartMiB" | "heapUsedEndMiB"> } {
  const t0 = performance.now();
  const samples: [number, number][] = [];
  const sample = () => {
    const mib = vmRssMiB(pid);
    if (Number.isFinite(mib)) samples.push([(performance.now() - t0) / 1000, mib]);
  };
  sample();
  const timer = setInterval(sample, 100);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const step = Math.max(1, Math.ceil(samples.length / 120));
      const timeline = samples
        .filter((_s, i) => i % step === 0 || i === samples.length - 1)
        .map(([t, m]): [number, number] => [r1(t), r1(m)]);
      return {
        pid,
        startMiB: r1(samples[0]?.[1] ?? NaN),
        peakMiB: r1(Math.max(...samples.map((s) => s[1]))),
        endMiB: r1(samples[samples.length - 1]?.[1] ?? NaN),
        timeline,
      };
    },
  };
}

export interface TailRun {
  links: number;
  request: string;
  /** Root create sent (bench clock) → root status.completionTime (operator clock, same host), ms. */
  endToEndMs: number;
  /** Root create sent → the bench saw the root Succeeded (polled every 100 ms), ms. */
  polledMs: number;
  /** Root startTime → link 0 startTime: running each link and dispatching its tail, ms. */
  forwardMs: number;
  /** Link 0 completionTime → root completionTime (the root's Succeeded write), ms. */
  unwindMs: number;
  /** startTime of a link's tail − its own startTime (root → link n-1 … link 1 → link 0). */
  forwardStepMs: Summary;
  /** The five slowest forward steps: the link, the step, and the startTime of its tail. */
  slowestForwardSteps: { link: number; ms: number; at: string }[];
  /** Links (root excluded) that delegated (status.tailCall set): n - 1 when every link but 0 did. */
  callsWithTailCall: number;
  /** Links labelled settled (passed by the root, out of the operator's memory): n - 1 expected. */
  settledLinks: number;
  /** Links that ran more than one attempt. */
  reRunLinks: number;
  rss: RssFigures;
}

async function deployTail(writer: KubeObjectWriter, namespace: string): Promise<void> {
  const one = { minContainers: 1, maxContainers: 1, concurrency: 4 };
  await deployInlineApp(writer, namespace, {
    name: "tail",
    entrypoint: "tail_chain",
    source: TAIL_SOURCE,
    functions: [
      { name: "tail_chain", ...one },
      { name: "link", ...one },
    ],
  });
}

/** Where a chain that did not finish stands: its links by phase, and five neither Delegated nor Succeeded. */
async function diagnose(client: KubeClient, namespace: string, request: string): Promise<string> {
  try {
    const calls = await childrenOf(client, namespace, request);
    const phases: Record<string, number> = {};
    for (const c of calls) phases[c.status?.phase ?? "Pending"] = (phases[c.status?.phase ?? "Pending"] ?? 0) + 1;
    const open = calls
      .filter((c) => c.status?.phase !== "Delegated" && c.status?.phase !== "Succeeded")
      .map((c) => `${c.metadata.name} link ${String(c.spec.args?.[0]?.value)}: ${JSON.stringify(c.status ?? {})}`);
    return `${calls.length} links created, by phase ${JSON.stringify(phases)}; not Delegated/Succeeded: ${open.slice(0, 5).join("; ") || "none"}`;
  } catch (e) {
    return `(could not list the chain: ${String(e)})`;
  }
}

/** Runs one chain of `n` links and reads its figures from the calls' status. */
async function runTail(
  client: KubeClient,
  op: BenchOperator,
  httpPort: number,
  n: number,
  timeoutMs: number,
): Promise<TailRun> {
  const ns = op.namespace;
  const pid = childOperatorPid();
  if (pid === undefined) throw new Error("the bench's operator is not running");
  const heapUsedStartMiB = await heapUsedMiB(httpPort);
  const rss = rssSampler(pid);
  const sent = Date.now();
  const t0 = performance.now();
  let name: string | undefined;
  let root: Call;
  let rssFigures: Omit<RssFigures, "heapUsedStartMiB" | "heapUsedEndMiB">;
  try {
    name = await createRequest(client, ns, "tail", "tail_chain", [n]);
    root = await waitFinished(client, ns, name, timeoutMs, op.alive);
  } catch (e) {
    const where = name ? await diagnose(client, ns, name) : "";
    throw new Error(`tail chain of ${n} links: ${String(e)}; ${where}`, { cause: e });
  } finally {
    rssFigures = rss.stop();
  }
  const polledMs = performance.now() - t0;
  const heapUsedEndMiB = await heapUsedMiB(httpPort);
  if (root.status?.output?.value !== n) throw new Error(`tail_chain(${n}) returned ${JSON.stringify(root.status)}`);
  // The chain from the root: each link is the one child of the call before it (its tail call).
  const calls = await childrenOf(client, ns, name);
  const childOf = new Map(calls.map((c) => [c.spec.parent!, c]));
  const walk: Call[] = [root];
  for (let c: Call | undefined = childOf.get(name); c; c = childOf.get(c.metadata.name!)) walk.push(c);
  if (walk.length !== n + 1 || calls.length !== n)
    throw new Error(`tail chain of ${n}: ${walk.length - 1} links reached from the root, ${calls.length} created`);
  walk.slice(1).forEach((c, i) => {
    if (c.spec.function !== "link" || c.spec.args?.[0]?.value !== n - 1 - i)
      throw new Error(`tail chain: link ${i} from the root is ${c.spec.function}(${JSON.stringify(c.spec.args)})`);
  });
  const forward: number[] = [];
  const steps: { link: number; ms: number; at: string }[] = [];
  for (let j = 0; j + 1 < walk.length; j++) {
    const [a, b] = [walk[j]!, walk[j + 1]!];
    forward.push(ms(b.status?.startTime) - ms(a.status?.startTime));
    steps.push({ link: n - 1 - j, ms: forward[forward.length - 1]!, at: b.status?.startTime ?? "" });
  }
  steps.sort((x, y) => y.ms - x.ms);
  const last = walk[walk.length - 1]!;
  const links = walk.slice(1);
  return {
    links: n,
    request: name,
    endToEndMs: ms(root.status?.completionTime) - sent,
    polledMs: Math.round(polledMs),
    forwardMs: ms(last.status?.startTime) - ms(root.status?.startTime),
    unwindMs: ms(root.status?.completionTime) - ms(last.status?.completionTime),
    forwardStepMs: summarize(forward),
    slowestForwardSteps: steps.slice(0, 5),
    callsWithTailCall: links.filter((c) => c.status?.tailCall !== undefined).length,
    settledLinks: links.filter((c) => c.metadata.labels?.[LABEL.settled] === "true").length,
    reRunLinks: walk.filter((c) => (c.status?.attempts ?? 1) > 1).length,
    rss: { ...rssFigures, heapUsedStartMiB, heapUsedEndMiB },
  };
}

export interface TailSizes {
  tail: number;
  deep: number;
  raw: number;
}

export interface TailResults {
  rawBefore: RawTailLinks;
  rawAfter: RawTailLinks;
  tail?: TailRun;
  deep?: TailRun;
  /** The deep chain's error when it did not complete (with where it stood). */
  deepError?: string;
}

/**
 * The tail phases against `op` (started): raw links before, a warm-up chain, the chain of
 * `sizes.tail` links, the chain of `sizes.deep` links (its failure is reported, not thrown), raw
 * links after. The raw links go to `rawNs` (no operator watches it). A size of 0 skips that chain.
 */
export async function tailPhases(
  client: KubeClient,
  writer: KubeObjectWriter,
  measurer: Measurer,
  phases: Phases,
  op: BenchOperator,
  httpPort: number,
  rawNs: string,
  sizes: TailSizes,
): Promise<TailResults> {
  const measure = <T>(name: string, fn: () => Promise<T>) => measurer.measure(phases, name, fn);
  const timeout = (n: number) => 300_000 + n * 200;
  const rawBefore = await measure("rawTailBefore", () => rawTailLinks(writer, rawNs, sizes.raw, "tail-before"));
  await deployTail(writer, op.namespace);
  await measure("tailWarmup", () => runTail(client, op, httpPort, 10, timeout(10)));
  const out: Partial<TailResults> = { rawBefore };
  if (sizes.tail > 0)
    out.tail = await measure("tail", () => runTail(client, op, httpPort, sizes.tail, timeout(sizes.tail)));
  if (sizes.deep > 0) {
    try {
      out.deep = await measure("tailDeep", () => runTail(client, op, httpPort, sizes.deep, timeout(sizes.deep)));
    } catch (e) {
      out.deepError = e instanceof Error ? e.message : String(e);
      console.error(`tailDeep: ${out.deepError}`);
      op.alive(); // an operator that exited ends the bench here
    }
  }
  out.rawAfter = await measure("rawTailAfter", () => rawTailLinks(writer, rawNs, sizes.raw, "tail-after"));
  return out as TailResults;
}

/** A chain's figures in the JSON, against the raw writes per link. */
function chainSection(run: TailRun, rawPerLinkMs: number, phases: Phases, phase: string) {
  const msPerLink = run.endToEndMs / run.links;
  const w = phases[phase]?.functionCallWrites;
  return {
    links: run.links,
    request: run.request,
    endToEndMs: run.endToEndMs,
    polledMs: run.polledMs,
    msPerLink: r2(msPerLink),
    rawWritesPerLinkMs: r2(rawPerLinkMs),
    ratioToRawWrites: r2(msPerLink / rawPerLinkMs),
    target: "<= 1.5x the raw writes per link",
    forwardMs: run.forwardMs,
    unwindMs: run.unwindMs,
    forwardMsPerLink: r2(run.forwardMs / run.links),
    forwardStepMs: run.forwardStepMs,
    slowestForwardSteps: run.slowestForwardSteps,
    callsWithTailCall: run.callsWithTailCall,
    settledLinks: run.settledLinks,
    reRunLinks: run.reRunLinks,
    // FunctionCall writes the apiserver counted in the phase, per call (root and links): create,
    // Running, Delegated, the root moving past it, its settled label = 5 expected; the root's
    // Succeeded once. Other writes are label patches here (the bench waits out deleted namespaces).
    writesPerCall: w ? Math.round(((w.creates + w.statusPatches + w.other) / (run.links + 1)) * 1000) / 1000 : NaN,
    otherWrites: w?.other ?? NaN,
    operatorRssMiB: run.rss,
  };
}

/** The JSON's tail sections: tailChain, tailChainDeep (or its error), rawTailLinks. */
export function tailSections(t: TailResults, phases: Phases) {
  const perLink = (t.rawBefore.perLinkMs.mean + t.rawAfter.perLinkMs.mean) / 2;
  const tail = t.tail ? chainSection(t.tail, perLink, phases, "tail") : undefined;
  const deep = t.deep ? chainSection(t.deep, perLink, phases, "tailDeep") : undefined;
  return {
    rawTailLinks: { before: t.rawBefore, after: t.rawAfter, perLinkMeanMs: r2(perLink) },
    ...(tail ? { tailChain: tail } : {}),
    ...(deep
      ? {
          tailChainDeep: {
            ...deep,
            peakRssOverTailPeak: tail ? r2(deep.operatorRssMiB.peakMiB / tail.operatorRssMiB.peakMiB) : NaN,
            // RSS growth over the chain per link (KiB): the operator keeps every call of the namespace.
            rssGrowthKiBPerLink: r2(((deep.operatorRssMiB.peakMiB - deep.operatorRssMiB.startMiB) * 1024) / deep.links),
          },
        }
      : {}),
    ...(t.deepError ? { tailChainDeepError: t.deepError } : {}),
  };
}

export type TailSections = ReturnType<typeof tailSections>;

/** The report's rows for the tail sections: figure, value, target/baseline, detail. */
export function tailRows(s: TailSections): [string, string, string, string][] {
  const raw = s.rawTailLinks;
  const rows: [string, string, string, string][] = [];
  for (const [when, r] of [
    ["before", raw.before],
    ["after", raw.after],
  ] as const)
    rows.push([
      `raw writes per tail link (create+Running+Delegated+Succeeded), ${when}`,
      `p50 ${r.perLinkMs.p50} ms, mean ${r.perLinkMs.mean} ms`,
      "baseline",
      `${r.links} links; p50 create ${r.createMs.p50}, patches ${r.runningPatchMs.p50}/${r.delegatedPatchMs.p50}/${r.succeededPatchMs.p50}`,
    ]);
  const chainRow = (c: NonNullable<TailSections["tailChain"]>): [string, string, string, string] => [
    `tail chain (${c.links} links) per link`,
    `${c.msPerLink} ms = ${c.ratioToRawWrites}x raw`,
    `<= 1.5x: ${c.ratioToRawWrites <= 1.5 ? "met" : "NOT met"}`,
    `${r1(c.endToEndMs / 1000)} s end to end; forward ${c.forwardMsPerLink} ms/link (step p50 ${c.forwardStepMs.p50}, ` +
      `p99 ${c.forwardStepMs.p99}, max ${c.forwardStepMs.max}), unwind ${c.unwindMs} ms; ` +
      `${c.writesPerCall} writes/call; ${c.callsWithTailCall} links delegated, ${c.settledLinks} settled`,
  ];
  const rssRow = (label: string, c: NonNullable<TailSections["tailChain"]>, extra: string) => {
    const m = c.operatorRssMiB;
    rows.push([
      `operator RSS, ${label}`,
      `start ${m.startMiB}, peak ${m.peakMiB}, end ${m.endMiB} MiB`,
      "",
      `V8 heap used ${m.heapUsedStartMiB} → ${m.heapUsedEndMiB} MiB${extra ? `; ${extra}` : ""}`,
    ]);
  };
  if (s.tailChain) {
    rows.push(chainRow(s.tailChain));
    rssRow(`tail chain (${s.tailChain.links})`, s.tailChain, "");
  }
  if (s.tailChainDeep) {
    const d = s.tailChainDeep;
    rows.push(chainRow(d));
    rssRow(
      `tail chain (${d.links})`,
      d,
      `peak ${d.peakRssOverTailPeak}x the ${s.tailChain?.links ?? "?"}-link chain's peak; ` +
        `growth ${d.rssGrowthKiBPerLink} KiB/link`,
    );
  }
  if (s.tailChainDeepError) rows.push(["deep tail chain", "FAILED", "must complete: NOT met", s.tailChainDeepError]);
  return rows;
}
