// Runs the operator from the source tree as a local process for the end-to-end suite (the chart
// suite runs the installed operator instead). Function pods use hostNetwork and reach its runtime
// API on 127.0.0.1; blobs go to the local cluster's SeaweedFS.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { applyCrds, kubeconfigPath, kubectl, repoRoot, waitFor } from "../../support/kube.js";
import { metricsPortFor } from "../../support/helm.js";
import { s3OperatorEnv } from "../../support/s3.js";
import { startChartOperator } from "./chart-operator.js";

export const OPERATOR_NAMESPACE = "trellis-system";
const RUNTIME_PORT = Number(process.env.TRELLIS_E2E_RUNTIME_PORT ?? 18081);
const HTTP_PORT = Number(process.env.TRELLIS_E2E_HTTP_PORT ?? 18080);

export interface OperatorProcess {
  logPath: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
  restart(signal?: NodeJS.Signals): Promise<void>;
  /** The last lines of the operator's log, for failure messages. */
  tail(lines?: number): string;
  /** False once the process exited (from-source operators only), e.g. after losing its Lease. */
  alive?(): boolean;
}

export async function prepareCluster(): Promise<void> {
  await applyCrds();
  await kubectl(["create", "namespace", OPERATOR_NAMESPACE]).catch((e: Error) => {
    if (!/AlreadyExists/.test(e.message)) throw e;
  });
}

export interface StartOperatorOptions {
  /** Source tree to start the operator from (<root>/operator/src/main.ts, cwd <root>); default this one. */
  root?: string;
  /** HTTP port (default TRELLIS_E2E_HTTP_PORT or 18080): a second replica on this host needs its own. */
  httpPort?: number;
  /** A new identity per launch, as a new pod would have (a restart then waits for the Lease). */
  freshIdentity?: boolean;
  /** Runs this bundle (operator/build.mjs) with a bare node, as the image does, instead of the sources under tsx. */
  bundle?: string;
  /** node's own flags before the bundle. */
  nodeFlags?: string[];
}

export async function startOperator(
  name: string,
  env: Record<string, string> = {},
  { root = repoRoot, httpPort = HTTP_PORT, freshIdentity = false, bundle, nodeFlags = [] }: StartOperatorOptions = {},
): Promise<OperatorProcess> {
  await prepareCluster();
  if (process.env.TRELLIS_E2E_OPERATOR === "chart") return startChartOperator(name, HTTP_PORT, RUNTIME_PORT, env);
  const dir = join(repoRoot, ".test-results", "e2e");
  mkdirSync(dir, { recursive: true });
  const logPath = join(dir, `operator-${name}.log`);
  let child: ChildProcess | undefined;
  let launches = 0;

  const launch = async () => {
    launches++;
    const fd = openSync(logPath, "a");
    const args = bundle
      ? [...nodeFlags, bundle] // as the image runs it: no source maps (see operator/build.mjs)
      : ["--import", "tsx", join(root, "operator/src/main.ts")];
    child = spawn(process.execPath, args, {
      cwd: root,
      env: {
        ...process.env,
        KUBECONFIG: kubeconfigPath(),
        TRELLIS_NAMESPACE: OPERATOR_NAMESPACE,
        TRELLIS_IDENTITY: `e2e-${name}-${process.pid}${freshIdentity ? `-${launches}` : ""}`,
        TRELLIS_OPERATOR_URL: `http://127.0.0.1:${RUNTIME_PORT}`,
        TRELLIS_RUNTIME_API_HOST: "127.0.0.1",
        TRELLIS_RUNTIME_API_PORT: String(RUNTIME_PORT),
        TRELLIS_HTTP_HOST: "127.0.0.1",
        TRELLIS_HTTP_PORT: String(httpPort),
        TRELLIS_METRICS_HOST: "127.0.0.1",
        TRELLIS_METRICS_PORT: String(metricsPortFor(httpPort)),
        TRELLIS_HOST_NETWORK: "true",
        TRELLIS_RUNTIME_IMAGE_PULL_POLICY: "Never",
        // The cluster's object store (SeaweedFS), one prefix for every file's operator as one
        // directory was before: blobs outlive restarts and are shared by replicas.
        ...s3OperatorEnv("e2e/"),
        TRELLIS_IDLE_TIMEOUT_SECONDS: "30",
        // A lease left by a killed process expires in 15 s; a test restart releases it first.
        TRELLIS_LEADER_ELECTION: "true",
        ...env,
      },
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    await waitFor(
      `operator ready on 127.0.0.1:${httpPort} (log: ${logPath})`,
      async () => {
        if (child?.exitCode !== null) throw new Error(`operator exited with ${child?.exitCode}: ${tail(20)}`);
        const r = await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined);
        return r?.ok ? true : undefined;
      },
      60_000,
    );
  };
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    const c = child;
    // Exited already (by itself, or killed by a signal): "exit" will not fire again.
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill(signal);
    await exited;
  };
  const tail = (lines = 40) => {
    try {
      return readFileSync(logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  };
  await launch();
  return {
    logPath,
    stop,
    restart: async (signal) => {
      await stop(signal);
      await launch();
    },
    tail,
    alive: () => child?.exitCode === null && child.signalCode === null,
  };
}
