// The chart without installing it: lint, what it renders for each switch, the values schema, and
// a server-side dry run of the rendered objects against the real apiserver (admission, schemas).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { chartDir, helm, type Manifest, render } from "../support/helm.js";
import { createNamespace, deleteNamespace, kubectl, repoRoot } from "../support/kube.js";

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
type Container = {
  name: string;
  image: string;
  imagePullPolicy: string;
  command: string[];
  env: { name: string; value?: string; valueFrom?: unknown }[];
  securityContext: Record<string, unknown>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  ports: { name: string; containerPort: number }[];
  resources: { requests?: object; limits?: object };
};

const find = (objs: Manifest[], kind: string, name?: string) =>
  objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
const one = (objs: Manifest[], kind: string, name?: string) => {
  const found = find(objs, kind, name);
  expect(found, `${kind} ${name ?? ""}`).toHaveLength(1);
  return found[0]!;
};
const podSpec = (objs: Manifest[]) =>
  (one(objs, "Deployment") as unknown as { spec: { template: { spec: Record<string, unknown> } } }).spec.template.spec;
const container = (objs: Manifest[]) => (podSpec(objs).containers as Container[])[0]!;
const env = (objs: Manifest[]) => Object.fromEntries(container(objs).env.map((e) => [e.name, e.value]));
const rules = (o: Manifest) => (o as unknown as { rules: Rule[] }).rules;
/** resource → verbs, over every rule of a role (subresources kept apart). */
const verbsOf = (o: Manifest) => {
  const out: Record<string, string[]> = {};
  for (const r of rules(o)) for (const res of r.resources) out[res] = [...(out[res] ?? []), ...r.verbs].sort();
  return out;
};

describe("helm lint", () => {
  it.each([
    ["defaults", []],
    [
      "every switch on",
      [
        "--set",
        "monitoring.serviceMonitor.enabled=true,monitoring.prometheusRule.enabled=true,monitoring.grafanaDashboard.enabled=true",
        "--set",
        "replicaCount=3,blobs.persistence.enabled=true,operator.watchNamespaces={a,b}",
      ],
    ],
    ["CRDs off", ["--set", "crds.install=false,rbac.create=false,serviceAccount.create=false"]],
  ])("is clean in strict mode with %s", async (_name, args) => {
    const { stdout } = await helm(["lint", "--strict", chartDir, ...(args as string[])]);
    expect(stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
  });
});

describe("rendered objects", () => {
  it("runs the operator from the runtime image, non-root, read-only, without capabilities", async () => {
    const { objects } = await render();
    const c = container(objects);
    expect(c.image).toBe("trellis/runtime:0.1.0");
    expect(c.command).toEqual([
      "node",
      "--heap-growing-percent=50",
      "--max-semi-space-size=8",
      "/opt/trellis/operator/operator.mjs",
    ]);
    const bare = await render({ "operator.nodeFlags": "null" });
    expect(container(bare.objects).command).toEqual(["node", "/opt/trellis/operator/operator.mjs"]);
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(podSpec(objects).securityContext).toMatchObject({ seccompProfile: { type: "RuntimeDefault" } });
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits).toBeDefined();
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(c.ports).toEqual([
      { name: "http", containerPort: 8080, protocol: "TCP" },
      { name: "runtime", containerPort: 8081, protocol: "TCP" },
      { name: "metrics", containerPort: 9090, protocol: "TCP" },
    ]);
    const e = env(objects);
    expect(e.TRELLIS_OPERATOR_URL).toBe("http://trellis.trellis-system.svc:8081");
    expect(e.TRELLIS_RUNTIME_IMAGE).toBe("trellis/runtime:0.1.0");
    expect(e.TRELLIS_LEADER_ELECTION).toBe("true");
    expect(e.TRELLIS_WATCH_NAMESPACES).toBe("");
    expect(e.TRELLIS_HOST_NETWORK).toBe("false");
    expect(e.TRELLIS_HTTP_AUTH).toBe("kubernetes");
    expect(e.TRELLIS_HTTP_BODY_LIMIT_BYTES).toBe("10485760");
    expect(e).not.toHaveProperty("KUBERNETES_SERVICE_HOST");
    expect(podSpec(objects).hostNetwork).toBeUndefined();
    // Only the leader Lease is the release's; the operator creates the key Secret itself.
    expect(one(objects, "Lease").metadata.name).toBe(e.TRELLIS_LEASE_NAME);
    expect(find(objects, "Secret")).toHaveLength(0);
    expect(find(objects, "PodDisruptionBudget")).toHaveLength(0);
    const svc = one(objects, "Service", "trellis") as unknown as { spec: { ports: { name: string; port: number }[] } };
    expect(svc.spec.ports.map((p) => [p.name, p.port])).toEqual([
      ["http", 8080],
      ["runtime", 8081],
    ]);
  });

  it("follows the values: replicas with a PDB and leader election, local-cluster networking, ports", async () => {
    const { objects } = await render({
      replicaCount: 2,
      "operator.leaderElection": false,
      hostNetwork: true,
      "kubernetesService.host": "127.0.0.1",
      "kubernetesService.port": "6443",
      "ports.runtimeApi": 28081,
      "runtime.image": "example.org/custom:1",
      "operator.heartbeatTimeoutMs": 5000,
    });
    const e = env(objects);
    expect(e.TRELLIS_LEADER_ELECTION).toBe("true");
    expect(e.TRELLIS_OPERATOR_URL).toBe("http://127.0.0.1:28081");
    expect(e.TRELLIS_RUNTIME_IMAGE).toBe("example.org/custom:1");
    expect(e.TRELLIS_HEARTBEAT_TIMEOUT_MS).toBe("5000");
    expect(e.KUBERNETES_SERVICE_HOST).toBe("127.0.0.1");
    expect(e.KUBERNETES_SERVICE_PORT).toBe("6443");
    expect(podSpec(objects).hostNetwork).toBe(true);
    expect(one(objects, "PodDisruptionBudget")).toMatchObject({ spec: { minAvailable: 1 } });
    const explicit = await render({ "operator.operatorUrl": "https://trellis.example.org:9443" });
    expect(env(explicit.objects).TRELLIS_OPERATOR_URL).toBe("https://trellis.example.org:9443");
  });

  it("keeps blobs in the operator pod by default (one replica); on S3, two replicas that all serve the API", async () => {
    const { objects: fs } = await render();
    expect((one(fs, "Deployment") as unknown as { spec: { replicas: number } }).spec.replicas).toBe(1);
    expect(env(fs)).toMatchObject({ TRELLIS_BLOB_BACKEND: "filesystem", TRELLIS_REQUEST_TTL_SECONDS: "86400" });
    expect((podSpec(fs).volumes as { name: string }[]).map((v) => v.name)).toContain("blobs");
    const { objects: s3 } = await render({
      "blobs.backend": "s3",
      "blobs.s3.bucket": "acme-trellis",
      "blobs.s3.prefix": "prod/",
      "blobs.s3.credentialsSecret": "s3-keys",
    });
    expect((one(s3, "Deployment") as unknown as { spec: { replicas: number } }).spec.replicas).toBe(2);
    expect(find(s3, "PodDisruptionBudget")).toHaveLength(1);
    const e = env(s3);
    expect(e).toMatchObject({
      TRELLIS_BLOB_BACKEND: "s3",
      TRELLIS_S3_BUCKET: "acme-trellis",
      TRELLIS_S3_PREFIX: "prod/",
      TRELLIS_LEADER_ELECTION: "true",
    });
    expect(e).not.toHaveProperty("TRELLIS_S3_ENDPOINT");
    const keys = container(s3).env.filter((x: { name: string }) => x.name.startsWith("AWS_"));
    expect(keys).toEqual([
      { name: "AWS_ACCESS_KEY_ID", valueFrom: { secretKeyRef: { name: "s3-keys", key: "AWS_ACCESS_KEY_ID" } } },
      { name: "AWS_SECRET_ACCESS_KEY", valueFrom: { secretKeyRef: { name: "s3-keys", key: "AWS_SECRET_ACCESS_KEY" } } },
    ]);
    expect((podSpec(s3).volumes as { name: string }[]).map((v) => v.name)).not.toContain("blobs");
    expect(find(s3, "PersistentVolumeClaim")).toHaveLength(0);
    // The API Service reaches every replica; the other one only the leader (sidecars need that).
    const api = one(s3, "Service", "trellis-api") as unknown as {
      spec: { selector: Record<string, string>; ports: { name: string }[] };
    };
    expect(api.spec.selector).not.toHaveProperty("trellis.dev/leader");
    expect(api.spec.ports.map((p) => p.name)).toEqual(["http"]);
    const leader = one(s3, "Service", "trellis") as unknown as { spec: { selector: Record<string, string> } };
    expect(leader.spec.selector["trellis.dev/leader"]).toBe("true");
    await expect(render({ "blobs.backend": "s3" })).rejects.toThrow(/blobs\/s3/);
    await expect(render({ "blobs.backend": "s3", "blobs.s3.bucket": "Bad_Name" })).rejects.toThrow(/blobs\/s3\/bucket/);
  });

  it("grants exactly the verbs the operator uses, cluster-wide by default", async () => {
    const { objects } = await render();
    const cluster = one(objects, "ClusterRole");
    expect(verbsOf(cluster)).toEqual({
      tokenreviews: ["create"],
      subjectaccessreviews: ["create"],
      functioncalls: ["create", "delete", "get", "list", "patch", "watch"],
      "functioncalls/status": ["create", "delete", "get", "list", "patch", "watch"],
      applications: ["create", "delete", "get", "list", "patch", "watch"],
      "applications/status": ["get", "list", "patch", "watch"],
      "applications/finalizers": ["update"],
      pods: ["create", "delete", "get", "list", "watch"],
      // The web view's logs route reads a call's worker log, after checking that the caller may too.
      "pods/log": ["get"],
      configmaps: ["create", "delete", "get", "list", "patch", "watch"],
      secrets: ["create", "delete"],
      events: ["create", "patch"],
    });
    const self = one(objects, "Role");
    expect(self.metadata.namespace).toBe("trellis-system");
    const named = rules(self).filter((r) => r.resourceNames);
    expect(named).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ resources: ["leases"], resourceNames: ["trellis"], verbs: ["get", "update"] }),
        expect.objectContaining({ resources: ["secrets"], resourceNames: ["trellis-key"], verbs: ["get"] }),
      ]),
    );
    const binding = one(objects, "ClusterRoleBinding") as unknown as {
      subjects: { name: string; namespace: string }[];
    };
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "trellis", namespace: "trellis-system" }]);
  });

  it("limits RBAC to the watched namespaces when they are listed", async () => {
    const { objects } = await render({ "operator.watchNamespaces": "{team-a,team-b}" });
    expect(env(objects).TRELLIS_WATCH_NAMESPACES).toBe("team-a,team-b");
    const roles = find(objects, "Role", "trellis");
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(["team-a", "team-b"]);
    expect(verbsOf(roles[0]!).functioncalls).toEqual(["create", "delete", "get", "list", "patch", "watch"]);
    expect(
      find(objects, "RoleBinding", "trellis")
        .map((r) => r.metadata.namespace)
        .sort(),
    ).toEqual(["team-a", "team-b"]);
    // Cluster-wide only what is cluster-scoped: token and access reviews of the HTTP API.
    expect(Object.keys(verbsOf(one(objects, "ClusterRole"))).sort()).toEqual(["subjectaccessreviews", "tokenreviews"]);
  });

  it("installs the generated CRDs unchanged, kept on uninstall unless told otherwise", async () => {
    const generated = readdirSync(join(repoRoot, "crds")).map((f) =>
      parse(readFileSync(join(repoRoot, "crds", f), "utf8")),
    );
    const { objects } = await render();
    const crds = find(objects, "CustomResourceDefinition");
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(["applications.trellis.dev", "functioncalls.trellis.dev"]);
    for (const crd of crds) {
      expect(crd.metadata.annotations?.["helm.sh/resource-policy"]).toBe("keep");
      const source = generated.find((g) => g.metadata.name === crd.metadata.name);
      expect(crd.spec).toEqual(source.spec);
    }
    const notKept = await render({ "crds.keep": false });
    for (const crd of find(notKept.objects, "CustomResourceDefinition"))
      expect(crd.metadata.annotations?.["helm.sh/resource-policy"]).toBeUndefined();
    expect(find((await render({ "crds.install": false })).objects, "CustomResourceDefinition")).toHaveLength(0);
  });

  it("adds monitoring objects only when switched on", async () => {
    const off = await render();
    for (const kind of ["ServiceMonitor", "PrometheusRule", "ConfigMap"])
      expect(find(off.objects, kind)).toHaveLength(0);
    const on = await render({
      "monitoring.serviceMonitor.enabled": true,
      "monitoring.prometheusRule.enabled": true,
      "monitoring.grafanaDashboard.enabled": true,
    });
    expect(one(on.objects, "ServiceMonitor")).toMatchObject({
      spec: { endpoints: [{ port: "metrics", path: "/metrics" }] },
    });
    const alerts = (
      one(on.objects, "PrometheusRule") as unknown as { spec: { groups: { rules: { alert: string }[] }[] } }
    ).spec.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(alerts).toEqual(
      expect.arrayContaining([
        "TrellisOperatorDown",
        "TrellisStuckCalls",
        "TrellisReconcileErrors",
        "TrellisQueueLatencyHigh",
      ]),
    );
    const dash = one(on.objects, "ConfigMap") as unknown as Manifest & { data: Record<string, string> };
    expect(dash.metadata.labels?.grafana_dashboard).toBe("1");
    const json = JSON.parse(dash.data["trellis.json"]!) as { title: string; panels: { targets: { expr: string }[] }[] };
    expect(json.title).toBe("Trellis");
    expect(json.panels.flatMap((p) => p.targets.map((t) => t.expr)).join(" ")).toContain(
      "trellis_dispatch_latency_seconds",
    );
  });

  it("rejects bad values with the field and the rule", async () => {
    await expect(render({ replicaCount: 0 })).rejects.toThrow(/replicaCount.*minimum/s);
    await expect(render({ "image.pullPolicy": "Sometimes" })).rejects.toThrow(/image\/pullPolicy/);
    await expect(render({ "operator.watchNamespaces": "{Not_A_Namespace}" })).rejects.toThrow(/watchNamespaces\/0/);
    await expect(render({ "operator.operatorUrl": "trellis:8081" })).rejects.toThrow(/operatorUrl/);
    await expect(render({ "operator.nodeFlags": "{--x; rm -rf /}" })).rejects.toThrow(/nodeFlags\/0.*pattern/s);
    await expect(render({ "ports.http": 70000 })).rejects.toThrow(/ports\/http.*maximum/s);
    await expect(render({ unknownKey: 1 })).rejects.toThrow(/unknownKey/);
    await expect(render({ "httpApi.auth": "off" })).rejects.toThrow(/httpApi\/auth/);
  });
});

describe("the credential key", () => {
  it("is not rendered: helm template gives the same output every time", async () => {
    const first = await render();
    const second = await render();
    expect(second.text).toBe(first.text);
    expect(first.text).not.toMatch(/^kind: Secret$/m);
  });

  it("the operator may read only its key Secret and create it when missing", async () => {
    const self = rules(one((await render()).objects, "Role"));
    const secretRules = self.filter((r) => r.resources.includes("secrets"));
    expect(secretRules).toEqual([
      { apiGroups: [""], resources: ["secrets"], resourceNames: ["trellis-key"], verbs: ["get"] },
      { apiGroups: [""], resources: ["secrets"], verbs: ["create"] },
    ]);
  });
});

describe("server-side dry run on the local cluster", () => {
  let ns = "";
  beforeAll(async () => {
    ns = await createNamespace("helm-dry");
  });
  afterAll(async () => {
    await deleteNamespace(ns);
  });

  it.each([
    ["defaults", {}],
    [
      "namespaced RBAC, replicas, persistence and the dashboard",
      {
        replicaCount: 2,
        "blobs.persistence.enabled": true,
        "monitoring.grafanaDashboard.enabled": true,
        hostNetwork: true,
      },
    ],
  ])("the apiserver accepts every object rendered with %s", async (_name, values) => {
    const extra: Record<string, string> = _name === "defaults" ? {} : { "operator.watchNamespaces": `{${ns}}` };
    const { text, objects } = await render({ ...values, ...extra }, ns, "dry");
    const out = await kubectl(["apply", "--dry-run=server", "-f", "-"], text);
    const lines = out.trim().split("\n");
    expect(lines).toHaveLength(objects.length);
    for (const l of lines) expect(l).toMatch(/(created|configured|unchanged) \(server dry run\)$/);
  });
});
