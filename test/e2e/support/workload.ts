// The workload of the fault-injection and chaos suites (apps/chaos_graph.py): deploy it, check a
// request's output and its executions against the FunctionCalls the operator recorded, and sum
// the figures the suites print.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LABEL } from "../../../protocol/index.js";
import { kubectl } from "../../support/kube.js";
import { type CallStatus, deployApp } from "./trellis.js";

export const GRAPH_APP = "chaos-graph";
const ITEMS = 20;
const DEPTH = 10;

export async function deployGraph(namespace: string): Promise<void> {
  const source = readFileSync(join(import.meta.dirname, "../apps/chaos_graph.py"), "utf8");
  await deployApp(namespace, GRAPH_APP, source, "graph", {
    // Few pods, many calls each: pods are what a small test machine runs short of.
    functions: [
      { name: "graph", maxContainers: 5, concurrency: 12 },
      { name: "square", maxContainers: 3, concurrency: 16 },
      ...["prepare", "add", "countdown", "finish"].map((name) => ({ name, maxContainers: 2, concurrency: 16 })),
    ],
  });
}

/** What graph(seed) returns as its value: sum of squares 1..20, times 1000, plus the chain 10+...+1. */
export const expectedValue = (seed: number): number =>
  ((ITEMS * (ITEMS + 1) * (2 * ITEMS + 1)) / 6) * 1000 + (DEPTH * (DEPTH + 1)) / 2 + seed;

/** The function each execution key of chaos_graph.py belongs to. */
const fnOfKey = (key: string): string => key.split(".")[0]!;

export interface CallItem {
  name: string;
  fn: string;
  request: string;
  status: CallStatus;
  /** A tail link its chain's head has passed (labelled settled): it stays Delegated for good. */
  settled: boolean;
}

/** Every FunctionCall of the namespace in one list, grouped by request (the root's name). */
export async function callsByRequest(namespace: string): Promise<Map<string, CallItem[]>> {
  const out = JSON.parse(await kubectl(["get", "fc", "-n", namespace, "-o", "json"])) as {
    items: {
      metadata: { name: string; labels?: Record<string, string> };
      spec: { function: string; request?: string };
      status?: CallStatus;
    }[];
  };
  const byRequest = new Map<string, CallItem[]>();
  for (const i of out.items) {
    const request = i.spec.request ?? i.metadata.name;
    const settled = i.metadata.labels?.[LABEL.settled] === "true";
    const item = { name: i.metadata.name, fn: i.spec.function, request, status: i.status ?? {}, settled };
    byRequest.set(request, [...(byRequest.get(request) ?? []), item]);
  }
  return byRequest;
}

export interface RequestFigures {
  calls: number;
  executions: number;
  /** Executions beyond the first of a call (a call that ran again). */
  reruns: number;
  infrastructureFailures: number;
  /** Why the request breaks the rules; empty when it keeps them. */
  problems: string[];
}

/**
 * Checks one finished request: the right value, every call executed at least once, and executions
 * beyond the first only where the operator recorded a lost attempt (a pod or container gone):
 * per function, re-runs <= infrastructure failures, and no call started more attempts than one
 * plus its infrastructure failures (the graph has no retries). A completed call executed again
 * would show as a re-run without a lost attempt, or as an attempt the failures do not explain.
 */
export function checkRequest(
  request: string,
  seed: number,
  output: unknown,
  calls: CallItem[],
  expectedCalls: number | undefined,
): RequestFigures {
  const problems: string[] = [];
  const out = output as { value?: number; runs?: Record<string, number> } | undefined;
  if (out?.value !== expectedValue(seed)) problems.push(`value ${out?.value}, expected ${expectedValue(seed)}`);
  const runs = out?.runs ?? {};
  const reruns = new Map<string, number>();
  let executions = 0;
  for (const [key, n] of Object.entries(runs)) {
    executions += n;
    if (n < 1) problems.push(`${key} never executed`);
    if (n > 1) reruns.set(fnOfKey(key), (reruns.get(fnOfKey(key)) ?? 0) + n - 1);
  }
  const infra = new Map<string, number>();
  for (const c of calls) {
    // Attempts lost: to a crash (infrastructureFailures) or to the pod going away (disruptions).
    const lost = (c.status.infrastructureFailures ?? 0) + (c.status.disruptions ?? 0);
    infra.set(c.fn, (infra.get(c.fn) ?? 0) + lost);
    if ((c.status.attempts ?? 0) > 1 + lost) {
      problems.push(`${c.name} (${c.fn}): ${c.status.attempts} attempts with ${lost} infrastructure failures`);
    }
    // A settled link ends Delegated: the head it delegated to took the chain's outcome.
    if (c.status.phase !== "Succeeded" && !(c.settled && c.status.phase === "Delegated")) {
      problems.push(`${c.name} (${c.fn}) ended ${c.status.phase}: ${JSON.stringify(c.status.error ?? null)}`);
    }
  }
  for (const [fn, n] of reruns) {
    if (n > (infra.get(fn) ?? 0)) problems.push(`${fn}: ${n} re-runs but ${infra.get(fn) ?? 0} lost attempts`);
  }
  if (expectedCalls !== undefined && calls.length !== expectedCalls) {
    problems.push(`${calls.length} FunctionCalls, expected ${expectedCalls}`);
  }
  return {
    calls: calls.length,
    executions,
    reruns: [...reruns.values()].reduce((a, b) => a + b, 0),
    infrastructureFailures: [...infra.values()].reduce((a, b) => a + b, 0),
    problems: problems.map((p) => `${request}: ${p}`),
  };
}

export function sumFigures(all: RequestFigures[]): Omit<RequestFigures, "problems"> & { problems: string[] } {
  return all.reduce(
    (a, f) => ({
      calls: a.calls + f.calls,
      executions: a.executions + f.executions,
      reruns: a.reruns + f.reruns,
      infrastructureFailures: a.infrastructureFailures + f.infrastructureFailures,
      problems: [...a.problems, ...f.problems],
    }),
    { calls: 0, executions: 0, reruns: 0, infrastructureFailures: 0, problems: [] as string[] },
  );
}
