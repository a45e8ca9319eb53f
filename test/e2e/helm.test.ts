// The chart installed for real on the local cluster: the operator runs from the runtime image as
// a Deployment (hostNetwork, since the local cluster has no kube-proxy), serves a seed example
// request, survives an upgrade, and uninstall leaves nothing of the release but the CRDs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chartDir, helm, localClusterValues, metricsPortFor, setFlags, waitNoOtherOperator } from "../support/helm.js";
import { createNamespace, deleteNamespace, kubectl, waitFor } from "../support/kube.js";
import { appName, deployApp, invoke, requestCalls, seedCases, waitFinished } from "./support/trellis.js";

// Not the ports of the source-tree operator of the other e2e files (18080/18081).
const HTTP_PORT = 28080;
const RUNTIME_PORT = 28081;
const RELEASE = "trellis-e2e";
const CRDS = ["applications.trellis.dev", "functioncalls.trellis.dev"];
const { cases, sources } = seedCases();
const seed = cases.find((c) => c.file === "ex03_gather.py")!;

let ns = "";
let appNs = "";
let installed = false;

const values = () => ({
  ...localClusterValues(HTTP_PORT, RUNTIME_PORT),
  "operator.idleTimeoutSeconds": 30,
  "resources.limits.memory": "768Mi",
});
const helmArgs = (extra: Record<string, string | number | boolean> = {}) => [
  chartDir,
  "--namespace",
  ns,
  ...setFlags({ ...values(), ...extra }),
  "--set",
  `operator.watchNamespaces={${appNs}}`,
  "--wait",
  "--timeout",
  "180s",
];

// Metadata Helm reads or writes on the CRDs; saved before the test and put back after it.
const HELM_LABELS = [
  "app.kubernetes.io/managed-by",
  "app.kubernetes.io/name",
  "app.kubernetes.io/instance",
  "app.kubernetes.io/component",
  "app.kubernetes.io/version",
  "app.kubernetes.io/part-of",
  "helm.sh/chart",
];
const HELM_ANNOTATIONS = ["meta.helm.sh/release-name", "meta.helm.sh/release-namespace", "helm.sh/resource-policy"];
const savedCrdMeta = new Map<string, { labels: Record<string, string>; annotations: Record<string, string> }>();

/** Lets the release adopt CRDs that exist already (applied by kubectl in the other suites). */
async function adoptCrds(): Promise<void> {
  for (const crd of CRDS) {
    const found = await kubectl(["get", "crd", crd, "-o", "json"]).catch(() => "");
    if (!found) continue;
    const meta = (
      JSON.parse(found) as { metadata: { labels?: Record<string, string>; annotations?: Record<string, string> } }
    ).metadata;
    savedCrdMeta.set(crd, { labels: meta.labels ?? {}, annotations: meta.annotations ?? {} });
    await kubectl(["label", "--overwrite", "crd", crd, "app.kubernetes.io/managed-by=Helm"]);
    await kubectl([
      "annotate",
      "--overwrite",
      "crd",
      crd,
      `meta.helm.sh/release-name=${RELEASE}`,
      `meta.helm.sh/release-namespace=${ns}`,
    ]);
  }
}

/** The CRDs' Helm metadata as it was before the test (absent keys removed). */
async function restoreCrds(): Promise<void> {
  for (const crd of CRDS) {
    const saved = savedCrdMeta.get(crd) ?? { labels: {}, annotations: {} };
    const args = (keys: string[], old: Record<string, string>) =>
      keys.map((k) => (old[k] === undefined ? `${k}-` : `${k}=${old[k]}`));
    await kubectl(["label", "--overwrite", "crd", crd, ...args(HELM_LABELS, saved.labels)]).catch(() => undefined);
    await kubectl(["annotate", "--overwrite", "crd", crd, ...args(HELM_ANNOTATIONS, saved.annotations)]).catch(
      () => undefined,
    );
  }
}

/** The release's operator pods; terminating ones only when asked. */
async function operatorPods(terminating = false): Promise<{ name: string; ready: boolean; image: string }[]> {
  const out = JSON.parse(
    await kubectl(["get", "pods", "-n", ns, "-l", `app.kubernetes.io/instance=${RELEASE}`, "-o", "json"]),
  ) as {
    items: {
      metadata: { name: string; deletionTimestamp?: string };
      spec: { containers: { image: string }[] };
      status: { conditions?: { type: string; status: string }[] };
    }[];
  };
  return out.items
    .filter((p) => terminating || !p.metadata.deletionTimestamp)
    .map((p) => ({
      name: p.metadata.name,
      image: p.spec.containers[0]!.image,
      ready: p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    }));
}

async function operatorLog(): Promise<string> {
  return kubectl(["logs", "-n", ns, `deploy/${RELEASE}`, "--tail", "40"]).catch((e: Error) => e.message);
}

async function runSeedRequest(): Promise<void> {
  const req = await invoke(appNs, appName(seed.file), seed.app, seed.args);
  const status = await waitFinished(appNs, req, 180_000).catch(async (e: Error) => {
    throw new Error(`${e.message}\noperator log:\n${await operatorLog()}`);
  });
  expect(status.error, JSON.stringify(status.error)).toBeUndefined();
  expect(status.phase).toBe("Succeeded");
  expect(status.output?.value).toEqual(seed.expected);
  const calls = await requestCalls(appNs, req);
  expect(calls.length).toBeGreaterThan(1);
  expect(calls.every((c) => c.status.phase === "Succeeded")).toBe(true);
}

beforeAll(async () => {
  await waitNoOtherOperator();
  ns = await createNamespace("helm-rel");
  appNs = await createNamespace("helm-app");
  await adoptCrds();
});

afterAll(async () => {
  if (installed) await helm(["uninstall", RELEASE, "--namespace", ns, "--wait"]).catch(() => undefined);
  await deleteNamespace(appNs);
  await deleteNamespace(ns);
  await restoreCrds();
});

describe("the chart on the local cluster", () => {
  it("installs a working operator that runs a seed example", async () => {
    await helm(["install", RELEASE, ...helmArgs()]).catch(async (e: Error) => {
      throw new Error(`${e.message}\noperator log:\n${await operatorLog()}`);
    });
    installed = true;
    const pods = await operatorPods();
    expect(pods).toHaveLength(1);
    expect(pods[0]).toMatchObject({ ready: true, image: "localhost/trellis-runtime:dev" });
    const health = await fetch(`http://127.0.0.1:${HTTP_PORT}/readyz`);
    expect(health.status).toBe(200);
    // The Service selects the leader alone: the pod labels itself once it leads.
    const endpoints = await waitFor("the Service's endpoints to name the leader pod", async () => {
      const out = await kubectl([
        "get",
        "endpoints",
        RELEASE,
        "-n",
        ns,
        "-o",
        "jsonpath={.subsets[*].addresses[*].targetRef.name}",
      ]);
      return out.trim() ? out.trim().split(/\s+/) : undefined;
    });
    expect(endpoints).toEqual([pods[0]!.name]);

    await deployApp(appNs, appName(seed.file), sources[seed.file]!, seed.app);
    await runSeedRequest();
    // The function pods reach the operator's runtime API on the chart's port.
    const fnPods = JSON.parse(await kubectl(["get", "pods", "-n", appNs, "-o", "json"])) as {
      items: { spec: { initContainers?: { env?: { name: string; value?: string }[] }[] } }[];
    };
    const urls = fnPods.items.flatMap((p) =>
      (p.spec.initContainers ?? []).flatMap((c) => (c.env ?? []).map((e) => e.value ?? "")),
    );
    expect(urls).toContain(`http://127.0.0.1:${RUNTIME_PORT}`);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPortFor(HTTP_PORT)}/metrics`)).text();
    expect(metrics).toMatch(/^trellis_leader 1$/m);
    expect(metrics).toMatch(
      new RegExp(`^trellis_function_calls_total\\{namespace="${appNs}",.*phase="Succeeded"\\} \\d+`, "m"),
    );
  });

  it("authenticates HTTP API callers with TokenReview and SubjectAccessReview under the chart's RBAC", async () => {
    const url = `http://127.0.0.1:${HTTP_PORT}/v1/namespaces/${appNs}/applications`;
    await kubectl(["create", "serviceaccount", "-n", appNs, "invoker"]);
    await kubectl(["create", "serviceaccount", "-n", appNs, "nobody"]);
    await kubectl(["create", "role", "-n", appNs, "list-apps", "--verb=list", "--resource=applications.trellis.dev"]);
    await kubectl([
      "create",
      "rolebinding",
      "-n",
      appNs,
      "invoker",
      "--role=list-apps",
      `--serviceaccount=${appNs}:invoker`,
    ]);
    const token = async (sa: string) =>
      (await kubectl(["create", "token", "-n", appNs, sa, "--audience=trellis"])).trim();
    expect((await fetch(url)).status).toBe(401);
    const denied = await fetch(url, { headers: { authorization: `Bearer ${await token("nobody")}` } });
    expect(denied.status).toBe(403);
    const invoker = await token("invoker");
    // RBAC changes reach the authorizer's cache within a poll.
    const listed = await waitFor("the invoker to list applications", async () => {
      const r = await fetch(url, { headers: { authorization: `Bearer ${invoker}` } });
      return r.status === 200 ? ((await r.json()) as unknown) : undefined;
    });
    expect(JSON.stringify(listed)).toContain(appName(seed.file));
  });

  it("keeps working across an upgrade that changes a value, with the same credential key", async () => {
    const key = await kubectl(["get", "secret", "-n", ns, `${RELEASE}-key`, "-o", "jsonpath={.data.key}"]);
    const before = (await operatorPods()).map((p) => p.name);
    await helm(["upgrade", RELEASE, ...helmArgs({ "operator.logLevel": "debug" })]);
    await waitFor(
      "the upgraded operator pod to be the only one, and Ready",
      async () => {
        const pods = await operatorPods();
        return pods.length === 1 && pods[0]!.ready && !before.includes(pods[0]!.name) ? true : undefined;
      },
      120_000,
    );
    const env = await kubectl([
      "get",
      "deploy",
      "-n",
      ns,
      RELEASE,
      "-o",
      'jsonpath={.spec.template.spec.containers[0].env[?(@.name=="TRELLIS_LOG_LEVEL")].value}',
    ]);
    expect(env).toBe("debug");
    expect(await kubectl(["get", "secret", "-n", ns, `${RELEASE}-key`, "-o", "jsonpath={.data.key}"])).toBe(key);
    await runSeedRequest();
  });

  it("uninstalls without leaving anything of the release behind but the kept CRDs", async () => {
    await helm(["uninstall", RELEASE, "--namespace", ns, "--wait"]);
    installed = false;
    await waitFor(
      "the operator pods to be gone",
      async () => ((await operatorPods(true)).length === 0 ? true : undefined),
      120_000,
    );
    const left = await kubectl([
      "get",
      "deploy,rs,pods,svc,sa,secrets,configmaps,roles,rolebindings,leases,pdb,pvc",
      "-n",
      ns,
      "-l",
      `app.kubernetes.io/instance=${RELEASE}`,
      "-o",
      "name",
    ]);
    expect(left.trim()).toBe("");
    // Nothing unlabelled either: only what Kubernetes puts into every namespace. The key Secret
    // the operator made is owned by the release's Lease: garbage collection removes it shortly.
    const listAll = async () =>
      (await kubectl(["get", "sa,secrets,configmaps,roles,rolebindings,leases,svc", "-n", ns, "-o", "name"]))
        .trim()
        .split("\n")
        .filter(Boolean);
    await waitFor("the key Secret to be garbage-collected", async () =>
      (await listAll()).includes(`secret/${RELEASE}-key`) ? undefined : true,
    );
    expect((await listAll()).sort()).toEqual(["configmap/kube-root-ca.crt", "serviceaccount/default"]);
    // The test's own invoker Role stays; the release's are gone.
    const appRbac = await kubectl(["get", "roles,rolebindings", "-n", appNs, "-o", "name"]);
    expect(appRbac.trim().split("\n").sort()).toEqual([
      "role.rbac.authorization.k8s.io/list-apps",
      "rolebinding.rbac.authorization.k8s.io/invoker",
    ]);
    const clusterWide = await kubectl(["get", "clusterroles,clusterrolebindings", "-o", "name"]);
    expect(clusterWide).not.toContain(`${RELEASE}-${ns}`);
    for (const crd of CRDS) {
      const kept = await kubectl([
        "get",
        "crd",
        crd,
        "-o",
        "jsonpath={.metadata.annotations.helm\\.sh/resource-policy}",
      ]);
      expect(kept).toBe("keep");
    }
  });
});
