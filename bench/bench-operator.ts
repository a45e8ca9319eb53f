// The bench's own operator (test/e2e/support/operator.ts) for one set of operator phases: started
// from a source tree (this one, or a --compare worktree), watching only its namespace, with its
// own Lease; and the namespace's teardown.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { KubeClient } from "../operator/src/kube/client.js";
import { isNotFound } from "../operator/src/kube/errors.js";
import type { KubeObjectWriter } from "../operator/src/kube/writer.js";
import { repoRoot } from "../test/support/kube.js";
import { childOperatorPid, portFree } from "./cluster.js";

export interface OperatorSpec {
  /** "current" (this tree) or "baseline" (the --compare revision). */
  label: string;
  /** Source tree the operator starts from. */
  root: string;
  namespace: string;
  /** Log name (.test-results/e2e/operator-<name>.log), Lease name, identity, blob directory. */
  logName: string;
  lease: string;
  identity: string;
  blobDir: string;
}

export interface BenchOperator extends OperatorSpec {
  logPath: string;
  /** Throws when the operator has exited. */
  alive(): void;
  /** Kills the operator (SIGKILL: no cleanup) and starts it again, as a lost pod would be replaced. */
  restart(signal: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

/** The spec of the current tree's operator (as the bench always ran it) or of the --compare one. */
export function operatorSpec(label: "current" | "baseline", root: string, namespace: string): OperatorSpec {
  const suffix = label === "current" ? "" : `-${label}`;
  return {
    label,
    root,
    namespace,
    logName: `bench${suffix}`,
    lease: `trellis-bench${suffix}`,
    identity: `bench${suffix}-${process.pid}`,
    blobDir: join(repoRoot, ".test-results", "bench", `blobs${suffix}`),
  };
}

/**
 * Bundles the tree's operator as the image carries it (operator/build.mjs), so the bench measures
 * what a cluster runs: bare node, no tsx loader (idle RSS measured 177–180 MiB bundled, 240 MiB under
 * tsx), with the chart's node flags (operator.nodeFlags). A --compare tree from before the bundle
 * existed runs from its sources. TRELLIS_BENCH_NODE_FLAGS replaces the flags (an experiment knob).
 */
function buildBundle(spec: OperatorSpec): string | undefined {
  const script = join(spec.root, "operator/build.mjs");
  if (!existsSync(script)) return undefined;
  const outfile = join(repoRoot, ".test-results", "bench", `operator-${spec.label}.mjs`);
  execFileSync(process.execPath, [script, "--outfile", outfile], {
    cwd: spec.root,
    stdio: ["ignore", "ignore", "inherit"],
  });
  return outfile;
}

/** The node flags the tree's chart runs its operator with. */
function chartNodeFlags(root: string): string[] {
  const file = join(root, "charts/trellis/values.yaml");
  if (!existsSync(file)) return [];
  const values = parse(readFileSync(file, "utf8")) as { operator?: { nodeFlags?: string[] } };
  return values.operator?.nodeFlags ?? [];
}

export async function startBenchOperator(spec: OperatorSpec): Promise<BenchOperator> {
  for (const port of [process.env.TRELLIS_E2E_RUNTIME_PORT!, process.env.TRELLIS_E2E_HTTP_PORT!])
    await portFree(Number(port));
  // Imported here: operator.ts reads the ports from the environment when it is loaded.
  const { startOperator } = await import("../test/e2e/support/operator.js");
  const op = await startOperator(
    spec.logName,
    {
      TRELLIS_WATCH_NAMESPACES: spec.namespace,
      TRELLIS_LEASE_NAME: spec.lease,
      TRELLIS_IDENTITY: spec.identity,
      TRELLIS_IDLE_TIMEOUT_SECONDS: "900",
      TRELLIS_BLOB_DIR: spec.blobDir,
    },
    {
      root: spec.root,
      bundle: buildBundle(spec),
      nodeFlags:
        process.env.TRELLIS_BENCH_NODE_FLAGS !== undefined
          ? process.env.TRELLIS_BENCH_NODE_FLAGS.split(" ").filter(Boolean)
          : chartNodeFlags(spec.root),
    },
  );
  let pid = childOperatorPid();
  if (pid === undefined) {
    await op.stop();
    throw new Error(`the bench's ${spec.label} operator is not running (log: ${op.logPath})`);
  }
  return {
    ...spec,
    logPath: op.logPath,
    alive: () => {
      if (childOperatorPid() !== pid) throw new Error(`the bench's ${spec.label} operator exited (log: ${op.logPath})`);
    },
    restart: async (signal) => {
      await op.restart(signal);
      pid = childOperatorPid();
    },
    stop: () => op.stop(),
  };
}

export const createNamespace = (writer: KubeObjectWriter, name: string) =>
  writer.create({ apiVersion: "v1", kind: "Namespace", metadata: { name } });

export const deleteNamespace = (writer: KubeObjectWriter, name: string) =>
  writer.delete({ apiVersion: "v1", kind: "Namespace", name, namespace: "" });

/**
 * Deletes the namespace and waits until it is gone: its pods (they would use CPU in the next
 * phases) and its FunctionCalls (thousands of deletes by the namespace controller and the garbage
 * collector would load the apiserver and etcd in the next phases).
 */
export async function deleteNamespaceAndWait(
  client: KubeClient,
  writer: KubeObjectWriter,
  name: string,
  timeoutMs = 600_000,
): Promise<void> {
  await deleteNamespace(writer, name);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.request("GET", `/api/v1/namespaces/${name}`);
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
    if (Date.now() > deadline) throw new Error(`namespace ${name} still there after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
