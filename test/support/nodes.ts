// Nodes of the local multi-node cluster (TRELLIS_NODES=3): stop and bring back a node with
// scripts/cluster/node.sh, and read nodes and the pods on them through kubectl.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { clusterDir, kubectl, repoRoot, waitFor } from "./kube.js";

const run = promisify(execFile);

/** Runs `scripts/cluster/node.sh <args>` (as root: it freezes cgroups and cuts links). */
async function nodeScript(args: string[]): Promise<string> {
  try {
    const { stdout } = await run("bash", [join(repoRoot, "scripts/cluster/node.sh"), ...args], {
      env: { ...process.env, TRELLIS_CLUSTER_DIR: clusterDir() },
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`node.sh ${args.join(" ")} failed: ${err.stderr || err.stdout || err.message}`, { cause: e });
  }
}

/** Freezes the node's kubelet, containerd, kube-proxy and containers and cuts its link. */
export const stopNode = async (name: string): Promise<void> => void (await nodeScript(["stop", name]));

/** Thaws and reconnects a stopped node. */
export const startNode = async (name: string): Promise<void> => void (await nodeScript(["start", name]));

export interface ScriptNode {
  name: string;
  ip: string;
  state: string;
}

/** `node.sh list`: the nodes the cluster scripts started, with their IP and state (running, stopped). */
export async function scriptNodes(): Promise<ScriptNode[]> {
  return (await nodeScript(["list"]))
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 3 && f[0] !== "NAME")
    .map(([name, ip, state]) => ({ name: name!, ip: ip!, state: state! }));
}

export interface ClusterNode {
  name: string;
  ready: boolean;
  zone: string | undefined;
  internalIP: string | undefined;
  unschedulable: boolean;
  taints: string[];
  /** Allocatable memory in bytes and CPU in millicores. */
  allocatable: { memory: number; cpuMilli: number };
}

interface NodeItem {
  metadata: { name: string; labels?: Record<string, string> };
  spec?: { unschedulable?: boolean; taints?: { key: string; effect: string }[] };
  status?: {
    conditions?: { type: string; status: string }[];
    addresses?: { type: string; address: string }[];
    allocatable?: Record<string, string>;
  };
}

const UNITS: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  m: 1e-3,
};

/** A Kubernetes quantity as a number ("1Gi" -> 1073741824, "500m" -> 0.5). */
export function quantity(q: string): number {
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(q);
  const unit = m ? UNITS[m[2]!] : undefined;
  if (!m || unit === undefined) throw new Error(`unsupported quantity ${q}`);
  return Number(m[1]) * unit;
}

/** The cluster's nodes, sorted by name. */
export async function clusterNodes(): Promise<ClusterNode[]> {
  const out = JSON.parse(await kubectl(["get", "nodes", "-o", "json"])) as { items: NodeItem[] };
  return out.items
    .map((n) => ({
      name: n.metadata.name,
      ready: n.status?.conditions?.find((c) => c.type === "Ready")?.status === "True",
      zone: n.metadata.labels?.["topology.kubernetes.io/zone"],
      internalIP: n.status?.addresses?.find((a) => a.type === "InternalIP")?.address,
      unschedulable: n.spec?.unschedulable === true,
      taints: (n.spec?.taints ?? []).map((t) => `${t.key}:${t.effect}`),
      allocatable: {
        memory: quantity(n.status?.allocatable?.memory ?? "0"),
        cpuMilli: Math.round(quantity(n.status?.allocatable?.cpu ?? "0") * 1000),
      },
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Waits until the node's Ready condition is `ready`; returns how long that took in ms. */
export async function waitNodeReady(name: string, ready: boolean, timeoutMs = 120_000): Promise<number> {
  const t0 = Date.now();
  await waitFor(
    `node ${name} ${ready ? "Ready" : "NotReady"}`,
    async () => ((await clusterNodes()).find((n) => n.name === name)?.ready === ready ? true : undefined),
    timeoutMs,
  );
  return Date.now() - t0;
}

/** Marks a node (un)schedulable, as kubectl cordon / uncordon do. */
export async function setSchedulable(name: string, schedulable: boolean): Promise<void> {
  await kubectl([schedulable ? "uncordon" : "cordon", name]);
}

export interface PodPlace {
  name: string;
  uid: string;
  node: string | undefined;
  phase: string | undefined;
  ip: string | undefined;
  ready: boolean;
  deleting: boolean;
  labels: Record<string, string>;
}

interface PodItem {
  metadata: { name: string; uid: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec?: { nodeName?: string };
  status?: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

/** The pods of a namespace (optionally a label selector) and the nodes they run on. */
export async function podPlaces(namespace: string, selector?: string): Promise<PodPlace[]> {
  const args = ["get", "pods", "-n", namespace, "-o", "json", ...(selector ? ["-l", selector] : [])];
  const out = JSON.parse(await kubectl(args)) as { items: PodItem[] };
  return out.items.map((p) => ({
    name: p.metadata.name,
    uid: p.metadata.uid,
    node: p.spec?.nodeName,
    phase: p.status?.phase,
    ip: p.status?.podIP,
    ready: p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True",
    deleting: p.metadata.deletionTimestamp !== undefined,
    labels: p.metadata.labels ?? {},
  }));
}

/** Counts per node name. */
export function countByNode(pods: { node: string | undefined }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const p of pods) if (p.node) counts.set(p.node, (counts.get(p.node) ?? 0) + 1);
  return counts;
}
