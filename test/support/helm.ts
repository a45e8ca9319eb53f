// Helm helpers of the chart tests: the helm binary unpacked by `npm run tools`, the chart in
// charts/trellis, and the values that make the operator run on the local cluster (one node on the
// host network, or several nodes with kube-proxy).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { kubeconfigPath, kubectl, repoRoot, waitFor } from "./kube.js";
import { s3ChartValues } from "./s3.js";

const run = promisify(execFile);
export const chartDir = join(repoRoot, "charts/trellis");

export function helmPath(): string {
  const path = join(repoRoot, ".tools/bin/helm");
  if (!existsSync(path)) throw new Error(`${path} missing: run npm run tools`);
  return path;
}

/** The cluster's kubeconfig when there is one: `helm lint` and `helm template` need none. */
function kubeconfigIfAny(): { KUBECONFIG?: string } {
  try {
    return { KUBECONFIG: kubeconfigPath() };
  } catch {
    return {};
  }
}

/** Runs helm; rejects with its stderr on a non-zero exit. */
export async function helm(args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(helmPath(), args, {
      env: { ...process.env, ...kubeconfigIfAny() },
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`helm ${args.join(" ")} failed: ${err.stderr || err.stdout || err.message}`, { cause: e });
  }
}

/** `--set` flags from a flat map (values as helm parses them). */
export const setFlags = (values: Record<string, string | number | boolean>): string[] =>
  Object.entries(values).flatMap(([k, v]) => ["--set", `${k}=${String(v)}`]);

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** `helm template` rendered and parsed into objects. */
export async function render(
  values: Record<string, string | number | boolean> = {},
  namespace = "trellis-system",
  release = "trellis",
): Promise<{ text: string; objects: Manifest[] }> {
  const { stdout } = await helm(["template", release, chartDir, "--namespace", namespace, ...setFlags(values)]);
  const objects = parseAllDocuments(stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((o): o is Manifest => o !== null);
  return { text: stdout, objects };
}

/** The test operators' /metrics port: its own port (never the HTTP API's), 10 above the HTTP port. */
export const metricsPortFor = (httpPort: number): number => httpPort + 10;

/** Values for the embedded local cluster (no kube-proxy, no DNS, image loaded into containerd). */
export function localClusterValues(httpPort: number, runtimePort: number): Record<string, string | number | boolean> {
  return {
    "ports.metrics": metricsPortFor(httpPort),
    // One replica: a second on the host network would want the same ports on the one node.
    replicaCount: 1,
    hostNetwork: true,
    "kubernetesService.host": "127.0.0.1",
    "kubernetesService.port": "6443",
    "image.repository": "localhost/trellis-runtime",
    "image.tag": "dev",
    "image.pullPolicy": "Never",
    "ports.http": httpPort,
    "ports.runtimeApi": runtimePort,
  };
}

/** The operator Service's fixed ClusterIP on the multi-node cluster (in its 10.96.0.0/16 service CIDR). */
export const MULTI_NODE_OPERATOR_IP = "10.96.0.50";

/**
 * Values for the local multi-node cluster (TRELLIS_NODES > 1): pods on pod networks, kube-proxy
 * routing ClusterIPs inside the nodes (the API server at 10.96.0.1 too, so no kubernetesService
 * override), but no DNS, so function pods reach the runtime API at the Service's fixed ClusterIP.
 */
export function multiNodeClusterValues(
  httpPort: number,
  runtimePort: number,
): Record<string, string | number | boolean> {
  return {
    "ports.metrics": metricsPortFor(httpPort),
    hostNetwork: false,
    "image.repository": "localhost/trellis-runtime",
    "image.tag": "dev",
    "image.pullPolicy": "Never",
    "ports.http": httpPort,
    "ports.runtimeApi": runtimePort,
    "service.clusterIP": MULTI_NODE_OPERATOR_IP,
    "operator.operatorUrl": `http://${MULTI_NODE_OPERATOR_IP}:${runtimePort}`,
    // Two replicas, on different nodes by the chart's default anti-affinity: a lost node leaves one.
    replicaCount: 2,
    // Blobs in the cluster's object store, which both replicas (on any node) reach: the Secret
    // with its keys is made by ensureS3Secret before the install.
    ...s3ChartValues("multinode/"),
    // Calls on a stopped node move within seconds, not the chart's 30.
    "functionPods.nodeLossTolerationSeconds": 5,
  };
}

interface LeaseItem {
  metadata: { namespace: string; name: string };
  spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
}

/** Trellis operator Leases held and renewed within their duration (an operator is running). */
export async function heldOperatorLeases(exclude: string[] = []): Promise<string[]> {
  const out = JSON.parse(await kubectl(["get", "leases", "--all-namespaces", "-o", "json"])) as {
    items: LeaseItem[];
  };
  const now = Date.now();
  return out.items
    .filter(
      (l) =>
        l.metadata.name.includes("trellis") &&
        // Node heartbeats (trellis-node-N on the multi-node local cluster) are no operators.
        l.metadata.namespace !== "kube-node-lease" &&
        !exclude.includes(`${l.metadata.namespace}/${l.metadata.name}`),
    )
    .filter((l) => {
      const s = l.spec ?? {};
      if (!s.holderIdentity || !s.renewTime) return false;
      return now - Date.parse(s.renewTime) < ((s.leaseDurationSeconds ?? 15) + 5) * 1000;
    })
    .map((l) => `${l.metadata.namespace}/${l.metadata.name} (${l.spec?.holderIdentity})`);
}

/**
 * Waits until no other Trellis operator holds a Lease: two operators would fight over the same
 * calls. Within `npm test` the e2e files run one after another, so this returns at once.
 */
export async function waitNoOtherOperator(timeoutMs = 240_000): Promise<void> {
  let held: string[] = [];
  await waitFor(
    "no other Trellis operator to run",
    async () => {
      held = await heldOperatorLeases();
      return held.length === 0 ? true : undefined;
    },
    timeoutMs,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; still leading: ${held.join(", ")}`);
  });
}
