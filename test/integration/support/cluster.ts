// Helpers for tests that run against the local cluster (scripts/cluster/up.sh) or any cluster
// named by KUBECONFIG.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { ApiException, CoreV1Api, KubeConfig } from "@kubernetes/client-node";

export const RUNTIME_IMAGE = "localhost/trellis-runtime:dev";

export function clusterDir(): string {
  return process.env.TRELLIS_CLUSTER_DIR ?? join(homedir(), ".local/state/trellis/cluster");
}

export function kubeconfigPath(): string {
  return process.env.KUBECONFIG ?? join(clusterDir(), "kubeconfig");
}

export function loadKubeConfig(): KubeConfig {
  const path = kubeconfigPath();
  if (!existsSync(path)) {
    throw new Error(
      `kubeconfig ${path} not found: start the local cluster with 'npm run cluster:up' or set KUBECONFIG`,
    );
  }
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

const COMPONENTS = ["containerd", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"];

export function componentLogPaths(): string[] {
  return COMPONENTS.map((c) => join(clusterDir(), "logs", `${c}.log`));
}

/** A failure report: where the component logs are and the last lines of the kubelet's. */
export function componentLogHint(tailLines = 15): string {
  const lines = ["local cluster component logs:", ...componentLogPaths().map((p) => `  ${p}`)];
  const kubelet = join(clusterDir(), "logs", "kubelet.log");
  if (existsSync(kubelet)) {
    const tail = readFileSync(kubelet, "utf8").trimEnd().split("\n").slice(-tailLines);
    lines.push(`last ${tail.length} lines of ${kubelet}:`, ...tail.map((l) => `  ${l}`));
  }
  return lines.join("\n");
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

/** Polls check() until it returns a value other than undefined, or fails after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export async function createTestNamespace(core: CoreV1Api, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await core.createNamespace({ body: { metadata: { name, labels: { "trellis.dev/test": prefix } } } });
  // Pods need the namespace's default ServiceAccount and the kube-root-ca.crt ConfigMap (both
  // made by the controller-manager); a pod created before them waits on volume-mount retries.
  await waitFor(`ServiceAccount ${name}/default`, async () =>
    core.readNamespacedServiceAccount({ name: "default", namespace: name }).then(() => true),
  );
  await waitFor(`ConfigMap ${name}/kube-root-ca.crt`, async () =>
    core.readNamespacedConfigMap({ name: "kube-root-ca.crt", namespace: name }).then(() => true),
  );
  return name;
}

/** Deletes the namespace and waits until the namespace controller has finalized it. */
export async function deleteTestNamespace(core: CoreV1Api, name: string, timeoutMs = 90_000): Promise<void> {
  try {
    await core.deleteNamespace({ name });
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  await waitFor(
    `namespace ${name} to be deleted`,
    async () => {
      try {
        await core.readNamespace({ name });
        return undefined;
      } catch (err) {
        if (isNotFound(err)) return true;
        throw err;
      }
    },
    timeoutMs,
  );
}

/** Events of a namespace, oldest first, one line each: for failure messages. */
export async function namespaceEvents(core: CoreV1Api, namespace: string): Promise<string> {
  const list = await core.listNamespacedEvent({ namespace });
  return list.items
    .map((e) => `${e.involvedObject.kind}/${e.involvedObject.name}: ${e.reason ?? ""} ${e.message ?? ""}`.trim())
    .join("\n");
}
