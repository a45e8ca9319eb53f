// Snapshots of the FunctionCalls of the node-loss suite and what changed between two of them:
// which calls ran on the lost node and ran again elsewhere, and which finished calls changed.
import type { CallItem } from "../../e2e/support/workload.js";

export type Snapshot = Map<string, CallItem>;

export function snapshot(byRequest: Map<string, CallItem[]>): Snapshot {
  const all: Snapshot = new Map();
  for (const calls of byRequest.values()) for (const c of calls) all.set(c.name, c);
  return all;
}

/** What a finished call must keep for good: a second execution would change one of these. */
const finishedFace = (c: CallItem): string =>
  JSON.stringify({
    phase: c.status.phase,
    attempts: c.status.attempts,
    pod: c.status.pod,
    completionTime: c.status.completionTime,
    output: c.status.output,
    tailCall: c.status.tailCall,
  });

const FINISHED = new Set(["Succeeded", "Failed", "Cancelled"]);
/** A final phase, or a tail link its chain has passed (Delegated for good); a Delegated head still moves. */
export const isFinished = (c: CallItem): boolean =>
  FINISHED.has(c.status.phase ?? "") || (c.settled && c.status.phase === "Delegated");

/** Calls finished in `before` whose result, attempt count or pod differs in `after`. */
export function changedFinished(before: Snapshot, after: Snapshot): string[] {
  const changed: string[] = [];
  for (const [name, b] of before) {
    if (!isFinished(b)) continue;
    const a = after.get(name);
    if (!a || finishedFace(a) !== finishedFace(b)) {
      changed.push(`${name} (${b.fn}): ${finishedFace(b)} -> ${a ? finishedFace(a) : "gone"}`);
    }
  }
  return changed;
}

export interface LostCalls {
  /** Calls Running on a pod of the lost node when it stopped. */
  running: CallItem[];
  /** Of those, the ones that ran again on a pod of another node (a later attempt). */
  rerunElsewhere: CallItem[];
  /** Of those, the ones whose report from the lost node arrived before it was cut off. */
  finishedBeforeStop: CallItem[];
  /** Neither: what went wrong with them. */
  problems: string[];
}

/**
 * Follows the calls Running on the lost node's pods at the stop: each must end with a later
 * attempt on another node's pod, or have finished in the attempt it had (a report already on its
 * way when the node was cut off; `final` is taken before the node comes back, so no later one).
 */
export function followLostCalls(
  atStop: Snapshot,
  final: Snapshot,
  lostPods: Set<string>,
  podNode: Map<string, string>,
): LostCalls {
  const running = [...atStop.values()].filter((c) => c.status.phase === "Running" && lostPods.has(c.status.pod ?? ""));
  const out: LostCalls = { running, rerunElsewhere: [], finishedBeforeStop: [], problems: [] };
  for (const c of running) {
    const f = final.get(c.name);
    if (f && (f.status.attempts ?? 0) > (c.status.attempts ?? 0) && !lostPods.has(f.status.pod ?? "")) {
      out.rerunElsewhere.push(f);
    } else if (f && isFinished(f) && f.status.pod === c.status.pod && f.status.attempts === c.status.attempts) {
      out.finishedBeforeStop.push(f);
    } else {
      const where = f?.status.pod ? `${f.status.pod} on ${podNode.get(f.status.pod) ?? "?"}` : "no pod";
      out.problems.push(
        `${c.name} (${c.fn}) ran attempt ${c.status.attempts} on ${c.status.pod}; ended ${f?.status.phase} ` +
          `attempt ${f?.status.attempts} on ${where} at ${f?.status.completionTime}`,
      );
    }
  }
  return out;
}

/** The runtime API's answers with the given status codes, per "<code> <route>", from a /metrics text. */
export function runtimeAnswers(metrics: string, codes: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of metrics.split("\n")) {
    if (!line.startsWith("trellis_runtime_api_requests_total{")) continue;
    const code = /code="(\d+)"/.exec(line)?.[1];
    const route = /route="([^"]*)"/.exec(line)?.[1] ?? "?";
    if (code && codes.includes(code))
      out.set(`${code} ${route}`, (out.get(`${code} ${route}`) ?? 0) + Number(line.split(" ").at(-1)));
  }
  return out;
}

/** What grew between two readings of runtimeAnswers. */
export function answersSince(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const grown = new Map<string, number>();
  for (const [k, n] of after) if (n > (before.get(k) ?? 0)) grown.set(k, n - (before.get(k) ?? 0));
  return grown;
}
