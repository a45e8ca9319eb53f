// Baseline: the API writes one call costs on the engine's common path, done by a plain client one
// call after another: create the child FunctionCall (built like the engine builds it), patch
// status Running (pod, attempts, startTime, queuedTime) and Succeeded (output, completionTime),
// the same patches dispatcher.ts and attempts.ts write. Same client code as the operator
// (KubeClient + KubeObjectWriter), in a namespace no operator watches.
import { API_VERSION, type FunctionCall } from "../operator/src/api/v1alpha1/index.js";
import { buildChild } from "../operator/src/engine/children.js";
import { childName } from "../operator/src/engine/names.js";
import type { KubeObject } from "../operator/src/kube/types.js";
import type { KubeObjectWriter } from "../operator/src/kube/writer.js";
import { type Summary, summarize } from "./stats.js";

type Call = FunctionCall & KubeObject;

export interface RawWrites {
  calls: number;
  /** Per call: create + Running patch + Succeeded patch, ms. */
  perCallMs: Summary;
  createMs: Summary;
  runningPatchMs: Summary;
  succeededPatchMs: Summary;
}

export async function rawWrites(writer: KubeObjectWriter, namespace: string, n: number, tag: string): Promise<RawWrites> {
  const root = await writer.create<Call>({
    apiVersion: API_VERSION,
    kind: "FunctionCall",
    metadata: { name: `raw-${tag}`, namespace },
    spec: { application: "raw", function: "chain", args: [{ value: n }] },
  } as Call);
  const per: number[] = [];
  const create: number[] = [];
  const running: number[] = [];
  const succeeded: number[] = [];
  for (let i = 0; i < n; i++) {
    const name = childName(root.metadata.name!, root.metadata.name!, i);
    const child = buildChild(root, root, { name, sequence: i, function: "step", args: [{ value: i }] });
    const ref = { apiVersion: API_VERSION, kind: "FunctionCall", namespace, name };
    const t0 = performance.now();
    await writer.create(child);
    const t1 = performance.now();
    const readyAt = new Date().toISOString();
    await writer.patchStatus(ref, {
      phase: "Running",
      pod: "raw-step-0",
      attempts: 1,
      startTime: new Date().toISOString(),
      retryAfter: null,
      queuedTime: readyAt,
    });
    const t2 = performance.now();
    await writer.patchStatus(ref, {
      phase: "Succeeded",
      completionTime: new Date().toISOString(),
      error: null,
      retryAfter: null,
      output: { value: i + 1 },
    });
    const t3 = performance.now();
    per.push(t3 - t0);
    create.push(t1 - t0);
    running.push(t2 - t1);
    succeeded.push(t3 - t2);
  }
  return {
    calls: n,
    perCallMs: summarize(per),
    createMs: summarize(create),
    runningPatchMs: summarize(running),
    succeededPatchMs: summarize(succeeded),
  };
}
