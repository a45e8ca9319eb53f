// Shared helpers of the integration and end-to-end suites: the cluster comes from KUBECONFIG,
// defaulting to the local cluster's kubeconfig.
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";

const run = promisify(execFile);
export const repoRoot = resolve(import.meta.dirname, "../..");

export function clusterDir(): string {
  return process.env.TRELLIS_CLUSTER_DIR ?? join(process.env.HOME ?? homedir(), ".local/state/trellis/cluster");
}

export function kubeconfigPath(): string {
  const path = process.env.KUBECONFIG ?? join(clusterDir(), "kubeconfig");
  if (!existsSync(path)) {
    throw new Error(`no kubeconfig at ${path}: run npm run cluster:up, or set KUBECONFIG to a cluster`);
  }
  return path;
}

export function kubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

export function kubectlPath(): string {
  const path = join(repoRoot, ".tools/bin/kubectl");
  if (!existsSync(path)) throw new Error(`${path} missing: run npm run tools`);
  return path;
}

/** Runs kubectl against the test cluster; rejects with stderr on a non-zero exit. */
export async function kubectl(args: string[], input?: string): Promise<string> {
  const child = run(kubectlPath(), args, {
    env: { ...process.env, KUBECONFIG: kubeconfigPath() },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  try {
    return (await child).stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`kubectl ${args.join(" ")} failed: ${err.stderr || err.message}`, { cause: e });
  }
}

/** A Role rule: verbs on one resource, "name.group" (e.g. functioncalls.trellis.dev) or a core one (pods/log). */
export interface RoleRule {
  verbs: string;
  resource: string;
}

/**
 * A ServiceAccount in `namespace` bound to a Role of `rules`; a token for it with the HTTP API's
 * audience (trellis), valid for an hour.
 */
export async function serviceAccountToken(namespace: string, name: string, rules: RoleRule[]): Promise<string> {
  await kubectl(["create", "serviceaccount", name, "-n", namespace]);
  const role = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name, namespace },
    rules: rules.map((r) => {
      const [res, group = ""] = r.resource.split(/\.(.*)/s);
      return { apiGroups: [group], resources: [res], verbs: r.verbs.split(",") };
    }),
  };
  await kubectl(["apply", "-f", "-"], JSON.stringify(role));
  await kubectl([
    "create",
    "rolebinding",
    name,
    "-n",
    namespace,
    `--role=${name}`,
    `--serviceaccount=${namespace}:${name}`,
  ]);
  return (await kubectl(["create", "token", name, "-n", namespace, "--duration=1h", "--audience=trellis"])).trim();
}

/** A kubeconfig file in `dir` whose server never answers (127.0.0.1:9): "no cluster" cases. */
export function unreachableKubeconfig(dir: string): string {
  const file = join(dir, "kubeconfig-unreachable");
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:9" } }],
      users: [{ name: "u", user: { token: "x" } }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": "x",
    }),
  );
  return file;
}

/** Where the component logs are, for failure messages. */
export function logsHint(): string {
  return `component logs: ${join(clusterDir(), "logs")}`;
}

/** Polls `check` until it returns a value other than undefined, or fails after timeoutMs. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""} (${logsHint()})`,
      );
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
  await kubeConfig()
    .makeApiClient(k8s.CoreV1Api)
    .createNamespace({ body: { metadata: { name } } });
  return name;
}

/** Deletes a namespace; with `waitMs`, also waits (at most that long) until it is gone. */
export async function deleteNamespace(name: string, waitMs = 0): Promise<void> {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.deleteNamespace({ name }).catch(() => undefined);
  if (waitMs <= 0) return;
  await waitFor(
    `namespace ${name} to be deleted`,
    async () =>
      core.readNamespace({ name }).then(
        () => undefined,
        () => true,
      ),
    waitMs,
  ).catch(() => undefined);
}

/** Applies crds/ (server-side, so repeated runs are no-ops) and waits until both are Established. */
export async function applyCrds(): Promise<void> {
  await kubectl(["apply", "--server-side", "--force-conflicts", "-f", join(repoRoot, "crds")]);
  await kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/applications.trellis.dev",
    "crd/functioncalls.trellis.dev",
  ]);
}
