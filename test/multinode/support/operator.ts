// The chart's operator on the three-node cluster: two replicas in pod networking (no hostNetwork),
// function pods reaching the leader through the Service's fixed ClusterIP, blobs in a directory
// every node shares (the nodes are network namespaces of one machine). The test process reaches
// the operator pods by pod IP (the host routes every node's pod CIDR).
import { execFileSync } from "node:child_process";
import { applyCrds, kubeconfigPath, kubectl, kubectlPath, waitFor } from "../../support/kube.js";
import { chartDir, helm, multiNodeClusterValues, setFlags, waitNoOtherOperator } from "../../support/helm.js";
import { ensureS3Secret } from "../../support/s3.js";
import { type PodPlace, podPlaces } from "../../support/nodes.js";

export const OPERATOR_NAMESPACE = "trellis-system";
const RELEASE = "trellis-mn";
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;
// In pod networking each replica has its own IP: the usual ports, no clash with the e2e operators.
const HTTP_PORT = 8080;
const RUNTIME_PORT = 8081;

export interface OperatorReplica extends PodPlace {
  /** What the replica's /readyz says (undefined: no answer, e.g. its node is stopped). */
  readyz?: { ok: boolean; leading?: boolean };
}

export interface MultiNodeOperator {
  release: string;
  /** The operator pods, with their nodes and /readyz answers. */
  replicas(): Promise<OperatorReplica[]>;
  /** The Lease holder's pod (undefined while nobody holds a current Lease). */
  leader(): Promise<{ pod: string; node: string | undefined; ip: string | undefined } | undefined>;
  /** Waits until a replica other than `not` holds the Lease and reports leading; returns it. */
  waitLeader(not?: string, timeoutMs?: number): Promise<{ pod: string; node: string | undefined }>;
  /** One replica's /metrics text. */
  metrics(pod: string): Promise<string>;
  /** The last lines of each reachable replica's log. */
  logs(lines?: number): string;
  uninstall(): Promise<void>;
}

interface LeaseSpec {
  holderIdentity?: string;
  renewTime?: string;
  leaseDurationSeconds?: number;
}

async function leaseHolder(): Promise<string | undefined> {
  const out = await kubectl(["get", "lease", RELEASE, "-n", OPERATOR_NAMESPACE, "-o", "json"]).catch(() => "");
  if (!out) return undefined;
  const spec = (JSON.parse(out) as { spec?: LeaseSpec }).spec ?? {};
  if (!spec.holderIdentity || !spec.renewTime) return undefined;
  const fresh = Date.now() - Date.parse(spec.renewTime) < (spec.leaseDurationSeconds ?? 15) * 1000;
  return fresh ? spec.holderIdentity : undefined;
}

async function readyz(ip: string | undefined): Promise<OperatorReplica["readyz"]> {
  if (!ip) return undefined;
  const r = await fetch(`http://${ip}:${HTTP_PORT}/readyz`, { signal: AbortSignal.timeout(2_000) }).catch(
    () => undefined,
  );
  if (!r) return undefined;
  const body = (await r.json().catch(() => ({}))) as { leading?: boolean };
  return { ok: r.ok, leading: body.leading };
}

/**
 * Installs the chart with multiNodeClusterValues (two replicas) and waits until both replicas run
 * and one of them leads.
 */
export async function installMultiNodeOperator(
  extra: Record<string, string | number | boolean> = {},
): Promise<MultiNodeOperator> {
  await waitNoOtherOperator();
  await applyCrds();
  const values: Record<string, string | number | boolean> = {
    ...multiNodeClusterValues(HTTP_PORT, RUNTIME_PORT),
    "crds.install": false,
    "operator.idleTimeoutSeconds": 60,
    "resources.limits.memory": "768Mi",
    ...extra,
  };
  await kubectl(["create", "namespace", OPERATOR_NAMESPACE]).catch((e: Error) => {
    if (!/AlreadyExists/.test(e.message)) throw e;
  });
  await ensureS3Secret(OPERATOR_NAMESPACE);
  await helm([
    "upgrade",
    "--install",
    RELEASE,
    chartDir,
    "--namespace",
    OPERATOR_NAMESPACE,
    "--create-namespace",
    ...setFlags(values),
    "--wait",
    "--timeout",
    "240s",
  ]);

  const replicas = async (): Promise<OperatorReplica[]> => {
    const pods = await podPlaces(OPERATOR_NAMESPACE, SELECTOR);
    return Promise.all(pods.map(async (p) => ({ ...p, readyz: await readyz(p.ip) })));
  };
  const leader: MultiNodeOperator["leader"] = async () => {
    const holder = await leaseHolder();
    if (!holder) return undefined;
    const pod = (await podPlaces(OPERATOR_NAMESPACE, SELECTOR)).find((p) => p.name === holder);
    return { pod: holder, node: pod?.node, ip: pod?.ip };
  };
  const waitLeader: MultiNodeOperator["waitLeader"] = (not, timeoutMs = 120_000) =>
    waitFor(
      `an operator replica${not ? ` other than ${not}` : ""} to lead`,
      async () => {
        const l = await leader();
        if (!l || l.pod === not) return undefined;
        return (await readyz(l.ip))?.leading ? { pod: l.pod, node: l.node } : undefined;
      },
      timeoutMs,
    );
  const op: MultiNodeOperator = {
    release: RELEASE,
    replicas,
    leader,
    waitLeader,
    metrics: async (pod) => {
      const p = (await podPlaces(OPERATOR_NAMESPACE, SELECTOR)).find((r) => r.name === pod);
      const port = values["ports.metrics"] ?? 9090;
      const r = await fetch(`http://${p?.ip}:${port}/metrics`, { signal: AbortSignal.timeout(5_000) });
      return r.text();
    },
    logs: (lines = 40) => {
      const names = execFileSync(
        kubectlPath(),
        ["get", "pods", "-n", OPERATOR_NAMESPACE, "-l", SELECTOR, "-o", "name"],
        {
          env: { ...process.env, KUBECONFIG: kubeconfigPath() },
          encoding: "utf8",
        },
      )
        .split("\n")
        .filter(Boolean);
      return names
        .map((n) => {
          try {
            const text = execFileSync(
              kubectlPath(),
              ["logs", "-n", OPERATOR_NAMESPACE, n, `--tail=${lines}`, "--request-timeout=10s"],
              { env: { ...process.env, KUBECONFIG: kubeconfigPath() }, encoding: "utf8" },
            );
            return `--- ${n}\n${text}`;
          } catch (e) {
            return `--- ${n}: ${String(e).slice(0, 300)}`;
          }
        })
        .join("\n");
    },
    uninstall: async () => {
      await helm(["uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait", "--timeout", "120s"]).catch(
        () => undefined,
      );
      // A replica on a node that was stopped may stay Terminating; it must not hold the next file up.
      await kubectl([
        "delete",
        "pods",
        "-n",
        OPERATOR_NAMESPACE,
        "-l",
        SELECTOR,
        "--grace-period=0",
        "--force",
        "--ignore-not-found",
      ]).catch(() => undefined);
    },
  };
  await waitFor(
    "both operator replicas running, one leading",
    async () => {
      const rs = await replicas();
      const running = rs.filter((r) => r.phase === "Running" && r.ready && !r.deleting);
      return running.length === 2 && running.some((r) => r.readyz?.leading) ? true : undefined;
    },
    180_000,
  ).catch(async (e: Error) => {
    throw new Error(`${e.message}\n${JSON.stringify(await replicas())}\n${op.logs(20)}`);
  });
  return op;
}
