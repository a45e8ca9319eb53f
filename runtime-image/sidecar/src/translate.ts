// Messages at the socket boundary that are more than a value: the function table, errors,
// outcomes and child-call specs, between the worker protocol and the operator API.
import type { z } from "zod";
import { type childCall, type discoveredFunctionMsg, type failureRequest, type Outcome, pythonIdentifier } from "../../../protocol/index.js";
import { ValueFormError, type OperatorValue, type WorkerForm } from "./values.js";

type DiscoveredFunction = z.input<typeof discoveredFunctionMsg>;
type FailureRequest = z.input<typeof failureRequest>;
type ChildCall = z.input<typeof childCall>;

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const posInt = (v: unknown): number | undefined => {
  const n = num(v);
  return n !== undefined && Number.isInteger(n) && n >= 0 ? n : undefined;
};

function retries(r: unknown): DiscoveredFunction["retries"] {
  if (typeof r !== "object" || r === null) return undefined;
  const o = r as Record<string, unknown>;
  const maxRetries = posInt(o.max_retries);
  if (maxRetries === undefined) return undefined;
  return {
    maxRetries,
    initialDelaySeconds: num(o.initial_delay) ?? 1,
    maxDelaySeconds: num(o.max_delay) ?? 60,
    delayMultiplier: Math.max(1, num(o.delay_multiplier) ?? 2),
  };
}

/**
 * The worker's function table (hello.functions, snake_case) as the register request wants it.
 * Names the operator cannot address (e.g. `Class.method`) are returned in `skipped`.
 */
export function functionTable(functions: unknown): { functions: DiscoveredFunction[]; skipped: string[] } {
  const out: DiscoveredFunction[] = [];
  const skipped: string[] = [];
  for (const f of Array.isArray(functions) ? functions : []) {
    if (typeof f !== "object" || f === null) continue;
    const o = f as Record<string, unknown>;
    const name = typeof o.name === "string" ? o.name : "";
    if (!pythonIdentifier.safeParse(name).success) {
      skipped.push(name);
      continue;
    }
    const d: DiscoveredFunction = { name, async: o.async === true, application: o.application === true };
    const timeout = num(o.timeout);
    if (timeout !== undefined && timeout > 0) d.timeoutSeconds = timeout;
    const maxConcurrency = posInt(o.max_concurrency);
    if (maxConcurrency) d.maxConcurrency = maxConcurrency;
    const minContainers = posInt(o.min_containers);
    if (minContainers !== undefined) d.minContainers = minContainers;
    const maxContainers = posInt(o.max_containers);
    if (maxContainers) d.maxContainers = maxContainers;
    // `retries: null` means "the application's": an entry point carries those itself.
    const r = retries(o.retries) ?? (d.application ? retries(o.application_retries) : undefined);
    if (r) d.retries = r;
    out.push(d);
  }
  return { functions: out, skipped };
}

/** The worker's Error (PROTOCOL.md §8). */
export interface WorkerError {
  type?: string;
  module?: string;
  message?: string;
  traceback?: string;
  function?: string;
  call?: string;
  request_error?: boolean;
  reason?: string;
  retryable?: boolean;
  cause?: string;
}

const KIND: Record<string, FailureRequest["kind"]> = {
  function_error: "user",
  request_error: "request_error",
  function_timeout: "timeout",
  worker_shutdown: "infrastructure",
  unknown_function: "user",
  internal: "user",
};

const clip = (s: string, max: number): string => (s.length <= max ? s : s.slice(0, max - 1) + "…");
// A traceback's last lines name the error: keep the end.
const clipHead = (s: string, max: number): string => (s.length <= max ? s : "…" + s.slice(s.length - max + 1));

/** A worker `failure` as the operator's failure request. */
export function failureFromWorker(attempt: number, e: WorkerError): FailureRequest {
  const reason = e.reason ?? (e.request_error ? "request_error" : "function_error");
  const kind = KIND[reason] ?? "user";
  const retryable = reason === "unknown_function" || kind === "request_error" ? false : e.retryable !== false;
  const error: FailureRequest["error"] = {
    type: clip(e.type || "Error", 1024),
    message: clip(e.message ?? "", 32768),
  };
  if (e.traceback) error.traceback = clipHead(e.traceback, 65536);
  return { attempt, error, kind, retryable };
}

/** What the worker's `resolved` carries for a call that did not succeed. */
export function errorForWorker(o: Outcome, fn: string | undefined): WorkerError {
  const e = o.error;
  if (o.phase === "Cancelled") {
    return {
      type: e?.type ?? "CallCancelled",
      message: e?.message ?? `call ${o.call} was cancelled`,
      traceback: e?.traceback ?? "",
      function: fn,
      call: o.call,
      request_error: false,
      reason: e?.reason ?? "cancelled",
      retryable: false,
    };
  }
  const out: WorkerError = {
    type: e?.type ?? "Error",
    message: e?.message ?? `call ${o.call} failed`,
    traceback: e?.traceback ?? "",
    function: fn,
    call: o.call,
    request_error: e?.reason === "request_error",
    reason: e?.reason ?? "function_error",
    retryable: false,
  };
  if (e?.cause) out.cause = e.cause;
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

/** One worker CallSpec (PROTOCOL.md §6). */
export interface CallSpec {
  id: string;
  kind: "call" | "map" | "reduce";
  function: string;
  args?: WorkerForm[];
  kwargs?: Record<string, WorkerForm>;
  items?: WorkerForm[] | { call: string };
  initial?: WorkerForm;
  delay?: number;
}

export type Convert = (form: unknown, where: string) => Promise<OperatorValue>;

/** A worker spec as the operator's child call; `convert` turns each value (and may upload it). */
export async function childFromSpec(spec: CallSpec, sequence: number, convert: Convert): Promise<ChildCall> {
  const where = `call ${spec.id}`;
  const child: ChildCall = { name: spec.id, sequence, function: spec.function };
  if (typeof spec.delay === "number" && spec.delay > 0) child.delaySeconds = spec.delay;
  if (spec.kind === "call") {
    child.args = await Promise.all((spec.args ?? []).map((a, i) => convert(a, `${where} args[${i}]`)));
    const kwargs: Record<string, OperatorValue> = {};
    for (const [k, v] of Object.entries(spec.kwargs ?? {})) kwargs[k] = await convert(v, `${where} kwargs.${k}`);
    child.kwargs = kwargs;
    return child;
  }
  if (spec.kind !== "map" && spec.kind !== "reduce") {
    throw new ValueFormError(`${where}: kind must be call, map or reduce (got ${String(spec.kind)})`);
  }
  const items = spec.items;
  const collection: { items?: OperatorValue[]; itemsFrom?: string; initial?: OperatorValue } = {};
  if (Array.isArray(items)) {
    collection.items = await Promise.all(items.map((it, i) => convert(it, `${where} items[${i}]`)));
  } else if (items && typeof items === "object" && typeof items.call === "string") {
    collection.itemsFrom = items.call;
  } else {
    throw new ValueFormError(`${where}: ${spec.kind} items must be a list of values or a {call} reference`);
  }
  if (spec.kind === "map") child.map = collection;
  else {
    if (spec.initial !== undefined) collection.initial = await convert(spec.initial, `${where} initial`);
    child.reduce = collection;
  }
  return child;
}
