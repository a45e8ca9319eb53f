// Helpers of the end-to-end suite: deploy Applications and invoke them with kubectl, as a user would.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import {
  API_VERSION,
  type FunctionCall,
  SHARD_ANNOTATION,
  expandShards,
  newRequest,
  requestName,
} from "../../../protocol/index.js";
import { kubectl, repoRoot, waitFor } from "../../support/kube.js";

export interface CallStatus {
  phase?: string;
  attempts?: number;
  infrastructureFailures?: number;
  disruptions?: number;
  pod?: string;
  startTime?: string;
  completionTime?: string;
  output?: { value?: unknown; pickle?: string; list?: unknown[]; blob?: string };
  tailCall?: string;
  error?: { type: string; message: string; traceback?: string; reason?: string; cause?: string };
}

export interface SeedCase {
  file: string;
  app: string;
  args: unknown[];
  expected: unknown;
}

const SEED_DIR = join(repoRoot, "runtime-image/python/tests/seed_examples");

/** The seed examples and their expected outputs, from the Python suite's own table. */
export function seedCases(): { cases: SeedCase[]; failing: SeedCase[]; sources: Record<string, string> } {
  const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(SEED_DIR)})
import cases
row = lambda c: dict(file=c[0], app=c[1], args=c[2], expected=c[3])
files = sorted({c[0] for c in cases.CASES + cases.FAILING_VERBATIM})
print(json.dumps(dict(cases=[row(c) for c in cases.CASES], failing=[row(c) for c in cases.FAILING_VERBATIM],
                      sources={f: cases.source(f) for f in files})))
`;
  return JSON.parse(execFileSync("python3", ["-c", script], { encoding: "utf8" }));
}

export const appName = (file: string) => file.replace(/\.py$/, "").replace(/_/g, "-").toLowerCase();

/** The longest Application name (63, the CRD's limit): `<stem>-` padded with a filler, distinct per stem. */
export function longAppName(stem: string): string {
  const head = `${stem.slice(0, 61)}-`;
  return head + "x".repeat(63 - head.length);
}

export async function deployApp(
  namespace: string,
  name: string,
  source: string,
  entrypoint: string,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const app = {
    apiVersion: API_VERSION,
    kind: "Application",
    metadata: { name, namespace },
    spec: { entrypoint, source: { inline: source }, ...extra },
  };
  await kubectl(["apply", "-f", "-"], JSON.stringify(app));
}

/**
 * Creates a request (a root FunctionCall) with kubectl; returns its name. Named as the HTTP API
 * names requests (`<application stem>-<12>`), so long application names give long call names.
 */
export async function invoke(namespace: string, application: string, fn: string, args: unknown[]): Promise<string> {
  const name = requestName(namespace, application);
  const call = newRequest({ namespace, application, function: fn, name, args: args.map((value) => ({ value })) });
  await kubectl(["create", "-f", "-"], JSON.stringify(call));
  return name;
}

export async function callStatus(namespace: string, name: string): Promise<CallStatus> {
  const out = await kubectl(["get", "fc", name, "-n", namespace, "-o", "jsonpath={.status}"]);
  return out ? (JSON.parse(out) as CallStatus) : {};
}

export async function waitFinished(namespace: string, name: string, timeoutMs = 120_000): Promise<CallStatus> {
  return waitFor(
    `FunctionCall ${namespace}/${name} to finish`,
    async () => {
      const s = await callStatus(namespace, name);
      return s.phase === "Succeeded" || s.phase === "Failed" || s.phase === "Cancelled" ? s : undefined;
    },
    timeoutMs,
  );
}

export async function waitPhase(
  namespace: string,
  name: string,
  phase: string,
  timeoutMs = 120_000,
): Promise<CallStatus> {
  return waitFor(
    `FunctionCall ${namespace}/${name} to reach ${phase}`,
    async () => {
      const s = await callStatus(namespace, name);
      return s.phase === phase ? s : undefined;
    },
    timeoutMs,
  );
}

/** Every FunctionCall of a request, as kubectl lists them. */
export async function requestCalls(
  namespace: string,
  request: string,
): Promise<{ name: string; fn: string; seq: number | undefined; item: boolean; status: CallStatus }[]> {
  const out = JSON.parse(await kubectl(["get", "fc", "-n", namespace, "-o", "json"])) as { items: FunctionCall[] };
  // A large map's items are in shards: each item as a call of its own.
  return expandShards(out.items)
    .filter((i) => i.metadata.name === request || i.spec.request === request)
    .map((i) => ({
      name: i.metadata.name ?? "",
      fn: i.spec.function,
      seq: i.spec.sequence,
      item: i.metadata.annotations?.[SHARD_ANNOTATION] !== undefined,
      status: (i.status ?? {}) as CallStatus,
    }));
}
