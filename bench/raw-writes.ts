// Baseline: the API writes one call costs on the engine's common path, done by a plain client one
// call after another: create the child FunctionCall (built like the engine builds it), patch
// status Running (pod, attempts, startTime, queuedTime) and Succeeded (output, completionTime),
// the same patches dispatcher.ts and attempts.ts write. Same client code as the operator
// (KubeClient + KubeObjectWriter), in a namespace no operator watches.
import { API_VERSION, childName, type FunctionCall } from "../protocol/index.js";
import { buildChild } from "../operator/src/functioncall/children.js";
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

/** The three writes of call `i` under `root`; returns the four instants around them (ms). */
async function oneCall(writer: KubeObjectWriter, root: Call, i: number): Promise<[number, number, number, number]> {
  const namespace = root.metadata.namespace!;
  const name = childName(root.metadata.name!, root.metadata.name!, i);
  const child = buildChild(root, root, { name, sequence: i, function: "step", args: [{ value: i }] });
  const ref = { apiVersion: API_VERSION, kind: "FunctionCall", namespace, name };
  const t0 = performance.now();
  await writer.create(child);
  const t1 = performance.now();
  const now = new Date().toISOString();
  await writer.patchStatus(ref, {
    phase: "Running",
    pod: "raw-step-0",
    attempts: 1,
    startTime: now,
    retryAfter: null,
    queuedTime: now,
  });
  const t2 = performance.now();
  await writer.patchStatus(ref, {
    phase: "Succeeded",
    completionTime: new Date().toISOString(),
    error: null,
    retryAfter: null,
    output: { value: i + 1 },
  });
  return [t0, t1, t2, performance.now()];
}

const makeRoot = (writer: KubeObjectWriter, namespace: string, name: string, n: number) =>
  writer.create<Call>({
    apiVersion: API_VERSION,
    kind: "FunctionCall",
    metadata: { name, namespace },
    spec: { application: "raw", function: "chain", args: [{ value: n }] },
  } as Call);

/**
 * The same writes for `n` calls with `concurrency` calls in flight (each call's three writes in
 * order): the most calls per second this client and apiserver sustain, the map's ceiling.
 */
export async function rawWritesConcurrent(
  writer: KubeObjectWriter,
  namespace: string,
  n: number,
  concurrency: number,
  tag: string,
): Promise<{ calls: number; concurrency: number; callsPerSecond: number; perCallMs: Summary }> {
  const root = await makeRoot(writer, namespace, `raw-${tag}`, n);
  const per: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const t = await oneCall(writer, root, next++);
        per.push(t[3] - t[0]);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  return { calls: n, concurrency, callsPerSecond: Math.round(n / secs), perCallMs: summarize(per) };
}

export async function rawWrites(
  writer: KubeObjectWriter,
  namespace: string,
  n: number,
  tag: string,
): Promise<RawWrites> {
  const root = await makeRoot(writer, namespace, `raw-${tag}`, n);
  const per: number[] = [];
  const create: number[] = [];
  const running: number[] = [];
  const succeeded: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = await oneCall(writer, root, i);
    per.push(t[3] - t[0]);
    create.push(t[1] - t[0]);
    running.push(t[2] - t[1]);
    succeeded.push(t[3] - t[2]);
  }
  return {
    calls: n,
    perCallMs: summarize(per),
    createMs: summarize(create),
    runningPatchMs: summarize(running),
    succeededPatchMs: summarize(succeeded),
  };
}

export interface RawTailLinks {
  links: number;
  /** Per link: create + Running + Delegated + Succeeded, ms. */
  perLinkMs: Summary;
  createMs: Summary;
  runningPatchMs: Summary;
  delegatedPatchMs: Summary;
  succeededPatchMs: Summary;
}

/**
 * The writes one tail link costs, for `n` links one after another: create the link (a child of the
 * previous one, built by `buildChild`, as a pod's /children makes it), status Running (as the
 * dispatcher writes it), Delegated with `tailCall` naming the next link (as a tail report does),
 * and Succeeded with the output (the write when its tail ends).
 */
export async function rawTailLinks(
  writer: KubeObjectWriter,
  namespace: string,
  n: number,
  tag: string,
): Promise<RawTailLinks> {
  const root = await makeRoot(writer, namespace, `raw-${tag}`, n);
  const request = root.metadata.name!;
  const per: number[] = [];
  const create: number[] = [];
  const running: number[] = [];
  const delegated: number[] = [];
  const succeeded: number[] = [];
  let parent = root;
  for (let i = 0; i < n; i++) {
    const name = childName(request, parent.metadata.name!, 0);
    const k = n - 1 - i;
    const child = buildChild(parent, root, { name, sequence: 0, function: "link", args: [{ value: k }, { value: i }] });
    const ref = { apiVersion: API_VERSION, kind: "FunctionCall", namespace, name };
    const t0 = performance.now();
    parent = await writer.create(child);
    const t1 = performance.now();
    const now = new Date().toISOString();
    await writer.patchStatus(ref, {
      phase: "Running",
      pod: "raw-link-0",
      attempts: 1,
      startTime: now,
      retryAfter: null,
      queuedTime: now,
    });
    const t2 = performance.now();
    await writer.patchStatus(ref, { phase: "Delegated", tailCall: childName(request, name, 0) });
    const t3 = performance.now();
    await writer.patchStatus(ref, {
      phase: "Succeeded",
      completionTime: new Date().toISOString(),
      error: null,
      retryAfter: null,
      output: { value: n },
    });
    const t4 = performance.now();
    per.push(t4 - t0);
    create.push(t1 - t0);
    running.push(t2 - t1);
    delegated.push(t3 - t2);
    succeeded.push(t4 - t3);
  }
  return {
    links: n,
    perLinkMs: summarize(per),
    createMs: summarize(create),
    runningPatchMs: summarize(running),
    delegatedPatchMs: summarize(delegated),
    succeededPatchMs: summarize(succeeded),
  };
}
