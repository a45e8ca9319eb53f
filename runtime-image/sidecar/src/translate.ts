// Messages at the socket boundary that are more than a value: the function table, errors,
// outcomes and child-call specs, between the worker protocol and the operator API. What the
// worker sends was checked against the protocol's schemas first (worker-parse.ts).
import type { z } from "zod";
import {
  type CallSpec,
  type childCall,
  type discoveredFunctionMsg,
  failureReason,
  type failureRequest,
  type FunctionInfo,
  type Outcome,
  pythonIdentifier,
  WORKER_FAILURE_REASONS,
  type WorkerError,
} from "../../../protocol/index.js";
import type { OperatorValue } from "./values.js";

type DiscoveredFunction = z.input<typeof discoveredFunctionMsg>;
type FailureRequest = z.input<typeof failureRequest>;
type ChildCall = z.input<typeof childCall>;
type WorkerRetries = FunctionInfo["retries"];

export type { CallSpec, WorkerError };

function retries(r: WorkerRetries): DiscoveredFunction["retries"] {
  if (!r) return undefined;
  return {
    maxRetries: r.max_retries,
    initialDelaySeconds: r.initial_delay,
    maxDelaySeconds: r.max_delay,
    delayMultiplier: r.delay_multiplier,
  };
}

/**
 * The worker's function table (hello.functions, snake_case) as the register request wants it.
 * Names the operator cannot address are returned in `skipped`.
 */
export function functionTable(functions: readonly FunctionInfo[]): {
  functions: DiscoveredFunction[];
  skipped: string[];
} {
  const out: DiscoveredFunction[] = [];
  const skipped: string[] = [];
  for (const f of functions) {
    if (!pythonIdentifier.safeParse(f.name).success) {
      skipped.push(f.name);
      continue;
    }
    out.push(discovered(f));
  }
  return { functions: out, skipped };
}

function discovered(f: FunctionInfo): DiscoveredFunction {
  const d: DiscoveredFunction = { name: f.name, async: f.async, application: f.application };
  if (f.parameters) d.parameters = f.parameters;
  if (f.tensorlake) d.tensorlake = f.tensorlake;
  if (f.timeout !== undefined) d.timeoutSeconds = f.timeout;
  if (f.max_concurrency) d.maxConcurrency = f.max_concurrency;
  if (typeof f.min_containers === "number") d.minContainers = f.min_containers;
  if (f.max_containers) d.maxContainers = f.max_containers;
  // `retries: null` means "the application's": an entry point carries those itself.
  const r = retries(f.retries) ?? (f.application ? retries(f.application_retries) : undefined);
  if (r) d.retries = r;
  return d;
}

const clip = (s: string, max: number): string => (s.length <= max ? s : s.slice(0, max - 1) + "…");
// A traceback's last lines name the error: keep the end.
const clipHead = (s: string, max: number): string => (s.length <= max ? s : "…" + s.slice(s.length - max + 1));

/**
 * A worker `failure` as the operator's failure request; kind and retry from the shared table. A
 * reason no worker raises itself was relayed from a failed child: that outcome is final, so a
 * re-run would only meet it again (and an infrastructure one must not spend this call's re-runs).
 */
export function failureFromWorker(attempt: number, e: Partial<WorkerError>): FailureRequest {
  const reason = failureReason(e.reason ?? (e.request_error ? "request_error" : "function_error"));
  const relayed = !(WORKER_FAILURE_REASONS as readonly string[]).includes(reason.name);
  const kind = reason.kind ?? "user";
  const retryable = reason.retry === "never" || relayed ? false : e.retryable !== false;
  const error: FailureRequest["error"] = {
    type: clip(e.type || "Error", 1024),
    message: clip(e.message ?? "", 32768),
  };
  if (e.traceback) error.traceback = clipHead(e.traceback, 65536);
  return { attempt, error, kind, retryable };
}

/** What the worker's `resolved` carries for a call that did not succeed. */
export function errorForWorker(o: Outcome, fn: string | undefined): WorkerError {
  const cancelled = o.phase === "Cancelled";
  const e = { ...o.error };
  const reason = e.reason ?? (cancelled ? "cancelled" : "function_error");
  const out: WorkerError = {
    type: e.type ?? (cancelled ? "CallCancelled" : "Error"),
    message: e.message ?? `call ${o.call} ${cancelled ? "was cancelled" : "failed"}`,
    traceback: e.traceback ?? "",
    function: fn,
    call: o.call,
    request_error: !cancelled && reason === "request_error",
    reason,
    retryable: false,
  };
  if (!cancelled && e.cause) out.cause = e.cause;
  return out;
}

/** For watches of a call whose creation failed (PROTOCOL.md §9: type InternalError). */
export function internalError(call: string, fn: string | undefined, message: string): WorkerError {
  return {
    type: "InternalError",
    module: "trellis",
    message,
    traceback: "",
    function: fn,
    call,
    reason: "internal",
    retryable: false,
    request_error: false,
  };
}

export type Convert = (form: unknown, where: string) => Promise<OperatorValue>;

/** A worker spec as the operator's child call; `convert` turns each value (and may upload it). */
export async function childFromSpec(spec: CallSpec, sequence: number, convert: Convert): Promise<ChildCall> {
  const where = `call ${spec.id}`;
  const child: ChildCall = { name: spec.id, sequence, function: spec.function };
  if (typeof spec.delay === "number" && spec.delay > 0) child.delaySeconds = spec.delay;
  if (spec.kind === "call") {
    child.args = await Promise.all(spec.args.map((a, i) => convert(a, `${where} args[${i}]`)));
    const kwargs: Record<string, OperatorValue> = {};
    for (const [k, v] of Object.entries(spec.kwargs)) kwargs[k] = await convert(v, `${where} kwargs.${k}`);
    child.kwargs = kwargs;
    return child;
  }
  const collection: { items?: OperatorValue[]; itemsFrom?: string; initial?: OperatorValue } = {};
  if (Array.isArray(spec.items)) {
    collection.items = await Promise.all(spec.items.map((it, i) => convert(it, `${where} items[${i}]`)));
  } else {
    collection.itemsFrom = spec.items.call;
  }
  if (spec.kind === "map") child.map = collection;
  else {
    if (spec.initial !== undefined) collection.initial = await convert(spec.initial, `${where} initial`);
    child.reduce = collection;
  }
  return child;
}
