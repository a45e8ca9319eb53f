// Builders for unit tests of the engine: calls and an in-memory CallView.
import {
  API_VERSION,
  type Application,
  type FunctionCallSpec,
  type FunctionCallStatus,
  type ValueRef,
  expandShards,
} from "../../../protocol/index.js";
import type { CallView, ItemsResult, PodState } from "./actions.js";
import { type Call, allInputs, nameOf } from "./calls.js";
import { resolvePolicy } from "./policy.js";
import { inlineItems } from "./values.js";

export const NS = "ns";
let rv = 1;

export function mkCall(
  name: string,
  spec: Partial<FunctionCallSpec> = {},
  status?: FunctionCallStatus,
  meta: Partial<Call["metadata"]> = {},
): Call {
  const c: Call = {
    apiVersion: API_VERSION,
    kind: "FunctionCall",
    metadata: { name, namespace: NS, uid: `uid-${name}`, resourceVersion: String(rv++), ...meta },
    spec: { application: "app", function: "f", ...spec },
  };
  if (status) c.status = status;
  return c;
}

export function mkChild(
  name: string,
  parent: string,
  request: string,
  sequence: number,
  spec: Partial<FunctionCallSpec> = {},
  status?: FunctionCallStatus,
): Call {
  return mkCall(name, { parent, request, sequence, ...spec }, status);
}

export interface ViewOptions {
  app?: Pick<Application, "spec">;
  pods?: Record<string, PodState>;
  items?: Record<string, ItemsResult>;
  ttl?: number;
  /** Names on their ready queue. */
  queued?: string[];
  /** Names a pod waits on. */
  waited?: string[];
  inlineValueLimitBytes?: number;
  maxCallSpecBytes?: number;
  reportGraceUntil?: number;
  shardMinItems?: number;
}

export function memoryView(calls: Call[], opts: ViewOptions = {}): CallView {
  const byName = new Map(calls.map((c) => [nameOf(c), c]));
  return {
    namespace: NS,
    call: (n) => byName.get(n),
    children: (p) => calls.filter((c) => c.spec.parent === p),
    delegatorsOf: (n) => calls.filter((c) => c.status?.tailCall === n).map(nameOf),
    dependentsOf: (n) => calls.filter((c) => allInputs(c).includes(n)).map(nameOf),
    waitedOn: (n) => opts.waited?.includes(n) ?? false,
    childOutputs: (p, n) => {
      const out: ValueRef[] = new Array(n);
      let found = 0;
      for (const c of expandShards(calls))
        if (c.spec.parent === p && c.status?.phase === "Succeeded") {
          const i = c.spec.sequence;
          if (i === undefined || i >= n || out[i] !== undefined) continue;
          out[i] = c.status.output ?? { value: null };
          found++;
        }
      return found === n ? out : undefined;
    },
    childStats: (p) => {
      const kids = calls.filter((c) => c.spec.parent === p);
      const failed = kids.find((c) => c.status?.phase === "Failed" || c.status?.phase === "Cancelled");
      return {
        count: kids.length,
        succeeded: kids.filter((c) => c.status?.phase === "Succeeded").length,
        failed: failed?.metadata.name,
      };
    },
    requestError: (r) =>
      calls.find(
        (c) =>
          (c.spec.request ?? nameOf(c)) === r &&
          c.status?.phase === "Failed" &&
          c.status.error?.reason === "request_error",
      )?.metadata.name,
    policy: (c) => resolvePolicy(c, opts.app, undefined, 300),
    pod: (p) => opts.pods?.[p] ?? "alive",
    queued: (c) => opts.queued?.includes(nameOf(c)) ?? false,
    items: (n) => {
      const given = opts.items?.[n];
      if (given) return given;
      return inlineItems(byName.get(n)?.status?.output) ?? { loading: true };
    },
    ttlSecondsAfterFinished: () => opts.ttl,
    timeoutGraceMs: 10_000,
    reportGraceUntil: opts.reportGraceUntil ?? 0,
    infrastructureRetries: 2,
    disruptionRetries: 100,
    inlineValueLimitBytes: opts.inlineValueLimitBytes ?? 65536,
    maxCallSpecBytes: opts.maxCallSpecBytes ?? 1024 * 1024,
    shardMinItems: opts.shardMinItems ?? 64,
  };
}
