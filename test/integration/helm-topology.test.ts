// The chart on a multi-node cluster, rendered by the real helm (no cluster needed): operator
// replicas kept apart by node and zone, the Service's fixed ClusterIP for clusters without DNS,
// the function pods' node-loss toleration, and the values of the local multi-node test bed.
import { describe, expect, it } from "vitest";
import {
  MULTI_NODE_OPERATOR_IP,
  chartDir,
  helm,
  type Manifest,
  multiNodeClusterValues,
  render,
  setFlags,
} from "../support/helm.js";

type Selector = { matchLabels: Record<string, string> };
type PodSpec = {
  hostNetwork?: boolean;
  affinity?: Record<string, unknown>;
  topologySpreadConstraints?: Record<string, unknown>[];
  containers: { env: { name: string; value?: string }[] }[];
  volumes: { name: string; hostPath?: { path: string } }[];
};
type Deployment = Manifest & { spec: { replicas: number; selector: Selector; template: { spec: PodSpec } } };
type Service = Manifest & { spec: { clusterIP?: string; selector: Record<string, string> } };

const one = <T extends Manifest>(objs: Manifest[], kind: string, name?: string): T => {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found, `${kind} ${name ?? ""}`).toHaveLength(1);
  return found[0] as T;
};
const deployment = (objs: Manifest[]) => one<Deployment>(objs, "Deployment");
const podSpec = (objs: Manifest[]) => deployment(objs).spec.template.spec;
const env = (objs: Manifest[]) => Object.fromEntries(podSpec(objs).containers[0]!.env.map((e) => [e.name, e.value]));

describe("operator replicas on different nodes", () => {
  it("adds no placement rules to a single replica", async () => {
    const { objects } = await render({ replicaCount: 1 });
    expect(podSpec(objects).affinity).toBeUndefined();
    expect(podSpec(objects).topologySpreadConstraints).toBeUndefined();
    expect(objects.filter((o) => o.kind === "PodDisruptionBudget")).toHaveLength(0);
  });

  it("keeps two replicas apart by node (preferred) and zone (soft), selecting the operator's pods", async () => {
    const { objects } = await render({ replicaCount: 2 });
    const d = deployment(objects);
    const selector = d.spec.selector;
    expect(selector.matchLabels).toEqual({
      "app.kubernetes.io/name": "trellis",
      "app.kubernetes.io/instance": "trellis",
      "app.kubernetes.io/component": "operator",
    });
    expect(d.spec.template.spec.affinity).toEqual({
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: selector } },
        ],
      },
    });
    expect(d.spec.template.spec.topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: "topology.kubernetes.io/zone",
        whenUnsatisfiable: "ScheduleAnyway",
        labelSelector: selector,
      },
    ]);
    // One replica may be drained at a time; the other (a Ready standby, or the leader) stays.
    expect(one(objects, "PodDisruptionBudget")).toMatchObject({ spec: { minAvailable: 1, selector } });
  });

  it("lets the user's affinity and spread constraints replace the defaults", async () => {
    const { objects } = await render({
      replicaCount: 3,
      "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key":
        "pool",
      "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator":
        "Exists",
    });
    expect(podSpec(objects).affinity).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: "pool", operator: "Exists" }] }],
        },
      },
    });
    // The spread default is a value of its own and stays.
    expect(podSpec(objects).topologySpreadConstraints).toHaveLength(1);

    const spread = await render({
      replicaCount: 2,
      "topologySpreadConstraints[0].maxSkew": 1,
      "topologySpreadConstraints[0].topologyKey": "kubernetes.io/hostname",
      "topologySpreadConstraints[0].whenUnsatisfiable": "DoNotSchedule",
      "topologySpreadConstraints[0].labelSelector.matchLabels.app\\.kubernetes\\.io/instance": "trellis",
    });
    expect(podSpec(spread.objects).topologySpreadConstraints).toEqual([
      {
        maxSkew: 1,
        topologyKey: "kubernetes.io/hostname",
        whenUnsatisfiable: "DoNotSchedule",
        labelSelector: { matchLabels: { "app.kubernetes.io/instance": "trellis" } },
      },
    ]);
    expect(podSpec(spread.objects).affinity).toHaveProperty("podAntiAffinity");
    await expect(render({ "topologySpreadConstraints[0].maxSkew": 1 })).rejects.toThrow(/topologySpreadConstraints/);
  });
});

describe("the Service's ClusterIP", () => {
  it("is assigned by the cluster unless fixed; a fixed one is the function pods' default URL", async () => {
    const { objects } = await render();
    expect(one<Service>(objects, "Service", "trellis").spec).not.toHaveProperty("clusterIP");
    const fixed = await render({ "service.clusterIP": "10.96.0.77" });
    const svc = one<Service>(fixed.objects, "Service", "trellis");
    expect(svc.spec.clusterIP).toBe("10.96.0.77");
    expect(svc.spec.selector["trellis.dev/leader"]).toBe("true");
    // The metrics Service reaches every replica and keeps an assigned address.
    expect(one<Service>(fixed.objects, "Service", "trellis-metrics").spec).not.toHaveProperty("clusterIP");
    expect(env(fixed.objects).TRELLIS_OPERATOR_URL).toBe("http://10.96.0.77:8081");
    const v6 = await render({ "service.clusterIP": "fd00:10:96::50" });
    expect(env(v6.objects).TRELLIS_OPERATOR_URL).toBe("http://[fd00:10:96::50]:8081");
    // An explicit URL still wins.
    const url = await render({ "service.clusterIP": "10.96.0.77", "operator.operatorUrl": "http://op.example:1" });
    expect(env(url.objects).TRELLIS_OPERATOR_URL).toBe("http://op.example:1");
  });

  it.each(["None", "10.96.0.300", "trellis.svc"])("refuses %j", async (ip) => {
    await expect(render({ "service.clusterIP": ip })).rejects.toThrow(/service\/clusterIP/);
  });
});

describe("the function pods' node-loss toleration", () => {
  it("passes functionPods.nodeLossTolerationSeconds to the operator, 30 s by default", async () => {
    expect(env((await render()).objects).TRELLIS_NODE_LOSS_TOLERATION_SECONDS).toBe("30");
    const fast = await render({ "functionPods.nodeLossTolerationSeconds": 0 });
    expect(env(fast.objects).TRELLIS_NODE_LOSS_TOLERATION_SECONDS).toBe("0");
  });

  it.each([-1, 86401])("refuses %j", async (v) => {
    await expect(render({ "functionPods.nodeLossTolerationSeconds": v })).rejects.toThrow(
      /functionPods\/nodeLossTolerationSeconds/,
    );
  });
});

describe("multiNodeClusterValues", () => {
  const values = multiNodeClusterValues(8080, 8081);

  it("runs two replicas in pod networking, reached at a fixed ClusterIP, blobs in the object store", async () => {
    const { objects } = await render(values);
    const spec = podSpec(objects);
    expect(deployment(objects).spec.replicas).toBe(2);
    expect(spec.hostNetwork).toBeUndefined();
    expect(spec.affinity).toHaveProperty("podAntiAffinity");
    expect(one<Service>(objects, "Service", "trellis").spec.clusterIP).toBe(MULTI_NODE_OPERATOR_IP);
    expect(spec.volumes.find((v) => v.name === "blobs")).toBeUndefined();
    const e = env(objects);
    expect(e.TRELLIS_BLOB_BACKEND).toBe("s3");
    expect(e.TRELLIS_S3_PREFIX).toBe("multinode/");
    expect(e.TRELLIS_OPERATOR_URL).toBe(`http://${MULTI_NODE_OPERATOR_IP}:8081`);
    expect(e.TRELLIS_NODE_LOSS_TOLERATION_SECONDS).toBe("5");
    expect(e.TRELLIS_LEADER_ELECTION).toBe("true");
    expect(e.TRELLIS_HOST_NETWORK).toBe("false");
    // kube-proxy routes 10.96.0.1 in every pod: the kubelet's KUBERNETES_SERVICE_HOST stays.
    expect(e).not.toHaveProperty("KUBERNETES_SERVICE_HOST");
    // Pod networking: the NetworkPolicy is rendered (it is left out only with hostNetwork).
    expect(objects.filter((o) => o.kind === "NetworkPolicy")).toHaveLength(1);
  });

  it("is clean for helm lint in strict mode", async () => {
    const { stdout } = await helm(["lint", "--strict", chartDir, ...setFlags(values)]);
    expect(stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
  });
});
