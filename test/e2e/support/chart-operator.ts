// The end-to-end suite against the installed chart: with TRELLIS_E2E_OPERATOR=chart, every file's
// operator is a Helm release of charts/trellis instead of a process from the source tree.
import { execFileSync } from "node:child_process";
import { kubeconfigPath, kubectl, kubectlPath, waitFor } from "../../support/kube.js";
import { chartDir, helm, localClusterValues, setFlags } from "../../support/helm.js";
import { ensureS3Secret, s3ChartValues } from "../../support/s3.js";
import type { OperatorProcess } from "./operator.js";

const RELEASE = "trellis-e2e-suite";
// Where users install it, so that tools looking for the operator there (the plugin) find it.
const NAMESPACE = "trellis-system";

/** Operator settings the files pass as env, as chart values. */
function valuesFromEnv(env: Record<string, string>): Record<string, string | number | boolean> {
  const v: Record<string, string | number | boolean> = {};
  if (env.TRELLIS_IDLE_TIMEOUT_SECONDS) v["operator.idleTimeoutSeconds"] = Number(env.TRELLIS_IDLE_TIMEOUT_SECONDS);
  if (env.TRELLIS_BLOB_SWEEP_INTERVAL_SECONDS)
    v["blobs.sweep.intervalSeconds"] = Number(env.TRELLIS_BLOB_SWEEP_INTERVAL_SECONDS);
  if (env.TRELLIS_BLOB_SWEEP_GRACE_SECONDS)
    v["blobs.sweep.graceSeconds"] = Number(env.TRELLIS_BLOB_SWEEP_GRACE_SECONDS);
  return v;
}

export async function startChartOperator(
  name: string,
  httpPort: number,
  runtimePort: number,
  env: Record<string, string>,
): Promise<OperatorProcess> {
  const selector = `app.kubernetes.io/instance=${RELEASE}`;
  const ready = async () => {
    await kubectl(["rollout", "status", "-n", NAMESPACE, `deploy/${RELEASE}`, "--timeout=180s"]);
    await waitFor(`the chart's operator ready on 127.0.0.1:${httpPort}`, async () => {
      const r = await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined);
      return r?.ok && (await r.json()).leading ? true : undefined;
    });
  };
  const tail = (lines = 40): string => {
    try {
      return execFileSync(kubectlPath(), ["logs", "-n", NAMESPACE, `deploy/${RELEASE}`, `--tail=${lines}`], {
        env: { ...process.env, KUBECONFIG: kubeconfigPath() },
        encoding: "utf8",
      });
    } catch (e) {
      return String(e);
    }
  };
  await kubectl(["create", "namespace", NAMESPACE]).catch((e: Error) => {
    if (!/AlreadyExists/.test(e.message)) throw e;
  });
  await ensureS3Secret(NAMESPACE);
  await helm([
    "upgrade",
    "--install",
    RELEASE,
    chartDir,
    "--namespace",
    NAMESPACE,
    "--create-namespace",
    ...setFlags({
      ...localClusterValues(httpPort, runtimePort),
      "crds.install": false,
      // Blobs and request state in the cluster's object store: they survive the operator pod.
      ...s3ChartValues("e2e-chart/"),
      "operator.idleTimeoutSeconds": 30,
      "resources.limits.memory": "768Mi",
      ...valuesFromEnv(env),
    }),
    "--wait",
    "--timeout",
    "180s",
  ]);
  await ready();
  return {
    logPath: `kubectl logs -n ${NAMESPACE} deploy/${RELEASE} (release ${RELEASE}, file ${name})`,
    stop: async () => {
      await helm(["uninstall", RELEASE, "--namespace", NAMESPACE, "--wait"]).catch(() => undefined);
      // The release is gone before its pods are: a terminating replica still watches and would
      // act on what a test does next (a deleted request's blobs), so wait for the pods too.
      await waitFor(
        "the chart's operator pods to be gone",
        async () =>
          (await kubectl(["get", "pods", "-n", NAMESPACE, "-l", selector, "-o", "name"])).trim() === ""
            ? true
            : undefined,
        180_000,
      );
    },
    restart: async (signal) => {
      // SIGKILL: the pod vanishes at once, as on a node loss; otherwise a graceful delete.
      const force = signal === "SIGKILL" ? ["--grace-period=0", "--force"] : [];
      await kubectl(["delete", "pod", "-n", NAMESPACE, "-l", selector, ...force]);
      await ready();
    },
    tail,
  };
}
