// The chart's network surface, rendered by the real helm: the NetworkPolicy of the operator's pods,
// /metrics on its own port and Service, and the HTTP API's hardening values. The local cluster's
// CNI does not enforce NetworkPolicies, so these check what is rendered (the server-side dry run in
// helm.test.ts has the apiserver admit it), not the traffic it stops.
import { describe, expect, it } from "vitest";
import { type Manifest, render } from "../support/helm.js";

type Port = { port: string; protocol: string };
type Rule = { ports: Port[]; from?: Record<string, unknown>[] };
type Policy = Manifest & {
  spec: {
    podSelector: { matchLabels: Record<string, string> };
    policyTypes: string[];
    ingress: Rule[];
    egress?: unknown[];
  };
};
type Container = { env: { name: string; value?: string }[]; ports: { name: string; containerPort: number }[] };

const byKind = (objs: Manifest[], kind: string) => objs.filter((o) => o.kind === kind);
const policy = (objs: Manifest[]) => {
  const found = byKind(objs, "NetworkPolicy");
  expect(found).toHaveLength(1);
  return found[0] as Policy;
};
const rule = (p: Policy, port: string) => p.spec.ingress.find((r) => r.ports.some((x) => x.port === port));
const container = (objs: Manifest[]) =>
  (byKind(objs, "Deployment")[0] as unknown as { spec: { template: { spec: { containers: Container[] } } } }).spec
    .template.spec.containers[0]!;
const env = (objs: Manifest[]) => Object.fromEntries(container(objs).env.map((e) => [e.name, e.value]));

describe("the NetworkPolicy", () => {
  it("admits the runtime API only from Trellis function pods of any namespace, HTTP and metrics from anywhere", async () => {
    const { objects } = await render();
    const p = policy(objects);
    expect(p.spec.podSelector.matchLabels).toEqual({
      "app.kubernetes.io/name": "trellis",
      "app.kubernetes.io/instance": "trellis",
      "app.kubernetes.io/component": "operator",
    });
    expect(p.spec.policyTypes).toEqual(["Ingress"]); // egress unrestricted by default
    expect(p.spec.ingress).toHaveLength(3);
    expect(rule(p, "runtime")!.from).toEqual([
      {
        namespaceSelector: {},
        podSelector: {
          matchLabels: { "app.kubernetes.io/managed-by": "trellis", "app.kubernetes.io/component": "function" },
        },
      },
    ]);
    expect(rule(p, "http")!.from).toBeUndefined(); // no `from`: any source
    expect(rule(p, "metrics")!.from).toBeUndefined();
    // Every named port of the policy is a port of the operator's container.
    const names = container(objects).ports.map((x) => x.name);
    for (const r of p.spec.ingress) for (const x of r.ports) expect(names).toContain(x.port);
  });

  it("takes the HTTP and metrics sources and egress rules from the values", async () => {
    const { objects } = await render({
      "networkPolicy.httpFrom[0].namespaceSelector.matchLabels.gateway": "public",
      "networkPolicy.metricsFrom[0].podSelector.matchLabels.app": "prometheus",
      "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name": "monitoring",
      "networkPolicy.egress[0].to[0].ipBlock.cidr": "10.0.0.1/32",
      "networkPolicy.egress[0].ports[0].port": 6443,
    });
    const p = policy(objects);
    expect(rule(p, "http")!.from).toEqual([{ namespaceSelector: { matchLabels: { gateway: "public" } } }]);
    expect(rule(p, "metrics")!.from).toEqual([
      {
        podSelector: { matchLabels: { app: "prometheus" } },
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
      },
    ]);
    expect(p.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(p.spec.egress).toEqual([{ to: [{ ipBlock: { cidr: "10.0.0.1/32" } }], ports: [{ port: 6443 }] }]);
  });

  it("is not rendered when switched off or on the node's network", async () => {
    expect(byKind((await render({ "networkPolicy.enabled": false })).objects, "NetworkPolicy")).toHaveLength(0);
    expect(byKind((await render({ hostNetwork: true })).objects, "NetworkPolicy")).toHaveLength(0);
  });
});

describe("metrics and HTTP API values", () => {
  it("serves /metrics on ports.metrics through a Service of every replica, scraped by the ServiceMonitor", async () => {
    const { objects } = await render({ "ports.metrics": 9191, "monitoring.serviceMonitor.enabled": true });
    expect(container(objects).ports.map((p) => [p.name, p.containerPort])).toEqual([
      ["http", 8080],
      ["runtime", 8081],
      ["metrics", 9191],
    ]);
    expect(env(objects).TRELLIS_METRICS_PORT).toBe("9191");
    const svc = byKind(objects, "Service").find((s) => s.metadata.name === "trellis-metrics") as unknown as {
      metadata: { labels: Record<string, string> };
      spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string }[] };
    };
    expect(svc.spec.ports).toEqual([{ name: "metrics", port: 9191, targetPort: "metrics", protocol: "TCP" }]);
    expect(svc.spec.selector).not.toHaveProperty("trellis.dev/leader"); // every replica
    const main = byKind(objects, "Service").find((s) => s.metadata.name === "trellis") as unknown as {
      spec: { ports: { name: string }[] };
    };
    expect(main.spec.ports.map((p) => p.name)).not.toContain("metrics");
    const sm = byKind(objects, "ServiceMonitor")[0] as unknown as {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] };
    };
    expect(sm.spec.selector.matchLabels["trellis.dev/metrics"]).toBe(svc.metadata.labels["trellis.dev/metrics"]);
    expect(sm.spec.endpoints[0]).toMatchObject({ port: "metrics", path: "/metrics" });
  });

  it("passes token audiences, forwarded headers and stream caps to the operator", async () => {
    const defaults = env((await render()).objects);
    expect(defaults).toMatchObject({
      TRELLIS_HTTP_TOKEN_AUDIENCES: "trellis",
      TRELLIS_HTTP_FORWARD_HEADERS: "",
      TRELLIS_HTTP_SSE_MAX_PER_CLIENT: "16",
      TRELLIS_HTTP_SSE_MAX_DURATION_SECONDS: "3600",
      TRELLIS_METRICS_PORT: "9090",
    });
    const set = env(
      (
        await render({
          "httpApi.tokenAudiences": "{trellis,gateway}",
          "httpApi.forwardHeaders": "{x-tenant,x-acme-*}",
          "httpApi.sse.maxPerClient": 4,
          "httpApi.sse.maxDurationSeconds": 600,
        })
      ).objects,
    );
    expect(set).toMatchObject({
      TRELLIS_HTTP_TOKEN_AUDIENCES: "trellis,gateway",
      TRELLIS_HTTP_FORWARD_HEADERS: "x-tenant,x-acme-*",
      TRELLIS_HTTP_SSE_MAX_PER_CLIENT: "4",
      TRELLIS_HTTP_SSE_MAX_DURATION_SECONDS: "600",
    });
    // No audiences: the API server's own (any ordinary token).
    expect(env((await render({ "httpApi.tokenAudiences": "null" })).objects).TRELLIS_HTTP_TOKEN_AUDIENCES).toBe("");
  });

  it("rejects bad values with the field and the rule", async () => {
    await expect(render({ "httpApi.sse.maxPerClient": 0 })).rejects.toThrow(/maxPerClient.*minimum/s);
    await expect(render({ "httpApi.tokenAudiences": "{a b}" })).rejects.toThrow(/tokenAudiences\/0/);
    await expect(render({ "httpApi.forwardHeaders": "{bad header}" })).rejects.toThrow(/forwardHeaders\/0/);
    await expect(render({ "ports.metrics": 70000 })).rejects.toThrow(/metrics.*maximum/s);
    await expect(render({ "networkPolicy.enabled": "yes" })).rejects.toThrow(/networkPolicy\/enabled/);
  });
});
