// The fault proxy wired to the test cluster: it forwards with the credentials of the cluster's
// kubeconfig, and the operator gets a kubeconfig whose server is the proxy on loopback (plain HTTP,
// no credentials of its own).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { kubeConfig, repoRoot } from "../../support/kube.js";
import { type FaultPlan, type FaultProxy, type Upstream, startFaultProxy } from "../../support/fault-proxy.js";

const fromData = (data?: string, file?: string): Buffer | undefined =>
  data ? Buffer.from(data, "base64") : file ? readFileSync(file) : undefined;

export function clusterUpstream(): Upstream {
  const kc = kubeConfig();
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster) throw new Error("kubeconfig: the current context names no cluster");
  return {
    server: cluster.server,
    ca: fromData(cluster.caData, cluster.caFile),
    cert: fromData(user?.certData, user?.certFile),
    key: fromData(user?.keyData, user?.keyFile),
    token: user?.token,
    insecure: cluster.skipTLSVerify,
  };
}

/** Starts the proxy and writes a kubeconfig that points at it; returns both. */
export async function startApiProxy(plan: FaultPlan): Promise<{ proxy: FaultProxy; kubeconfig: string }> {
  const proxy = await startFaultProxy(clusterUpstream(), plan);
  const dir = join(repoRoot, ".test-results", "e2e");
  mkdirSync(dir, { recursive: true });
  const kubeconfig = join(dir, "kubeconfig-fault-proxy");
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      // Plain HTTP on loopback: the client must be told that no TLS is expected.
      clusters: [{ name: "proxy", cluster: { server: proxy.url, "insecure-skip-tls-verify": true } }],
      users: [{ name: "proxy", user: {} }],
      contexts: [{ name: "proxy", context: { cluster: "proxy", user: "proxy" } }],
      "current-context": "proxy",
    }),
  );
  return { proxy, kubeconfig };
}
