// The three-node test bed itself: three Ready nodes in distinct zones with distinct addresses;
// pods on two different nodes reach each other by pod IP and the API server through the
// `kubernetes` Service's ClusterIP (kube-proxy on each node); the chart's two operator replicas land
// on different nodes and exactly one of them leads.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace, kubectl, waitFor } from "../support/kube.js";
import { type ClusterNode, clusterNodes, podPlaces, scriptNodes } from "../support/nodes.js";
import { type MultiNodeOperator, installMultiNodeOperator } from "./support/operator.js";

const IMAGE = "localhost/trellis-runtime:dev";
const PORT = 8000;

// A tiny HTTP server answering its own node name, and a client that calls a peer and the API server.
const SERVER = `
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["NODE_NAME"].encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("0.0.0.0", ${PORT}), H).serve_forever()
`;
const CLIENT = `
import json, os, ssl, sys, urllib.request, urllib.error
def get(url, ctx=None):
    try:
        with urllib.request.urlopen(url, timeout=10, context=ctx) as r:
            return {"status": r.status, "body": r.read().decode()}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": ""}
    except Exception as e:
        return {"status": 0, "body": repr(e)}
api = "https://%s:%s/version" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
print(json.dumps({"peer": get(sys.argv[1]), "api": get(api, ctx), "apiHost": os.environ["KUBERNETES_SERVICE_HOST"]}))
`;

let nodes: ClusterNode[] = [];
let ns = "";
let op: MultiNodeOperator | undefined;

/** A pod of the runtime image pinned to one node, running a Python script. */
function pinnedPod(name: string, node: string, script: string, args: string[], restartPolicy: string): unknown {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: {
      nodeSelector: { "kubernetes.io/hostname": node },
      restartPolicy,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 1,
      securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "main",
          image: IMAGE,
          imagePullPolicy: "Never",
          command: ["python3", "-c", script, ...args],
          env: [{ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
        },
      ],
    },
  };
}

beforeAll(async () => {
  nodes = await clusterNodes();
  ns = await createNamespace("topology");
});
afterAll(async () => {
  // Before the operator goes: function pods drain through it on their way out.
  await deleteNamespace(ns, 180_000);
  await op?.uninstall();
});

describe("three nodes", () => {
  it("are Ready, each in its own zone with its own address", async () => {
    console.log(
      `[multinode] nodes: ${nodes.map((n) => `${n.name} ${n.internalIP} ${n.zone} ready=${n.ready}`).join("; ")}`,
    );
    expect(nodes).toHaveLength(3);
    expect(nodes.every((n) => n.ready)).toBe(true);
    expect(new Set(nodes.map((n) => n.zone)).size).toBe(3);
    expect(nodes.every((n) => n.zone?.startsWith("zone-"))).toBe(true);
    const ips = nodes.map((n) => n.internalIP);
    expect(new Set(ips).size).toBe(3);
    expect(ips.every((ip) => ip !== undefined && ip !== "127.0.0.1")).toBe(true);
    // The cluster scripts' view agrees: the same nodes at the same addresses, all running.
    const listed = await scriptNodes();
    expect(listed.map((n) => [n.name, n.ip])).toEqual(nodes.map((n) => [n.name, n.internalIP]));
    expect(listed.every((n) => n.state === "Running")).toBe(true);
  });

  it("pods on two nodes reach each other by pod IP and the API server by its ClusterIP", async () => {
    const [a, b] = nodes;
    await kubectl(["apply", "-f", "-"], JSON.stringify(pinnedPod("server", a!.name, SERVER, [], "Always")));
    const server = await waitFor(
      "the server pod running with an IP",
      async () => {
        const p = (await podPlaces(ns, "app=server"))[0];
        return p?.phase === "Running" && p.ip ? p : undefined;
      },
      120_000,
    );
    expect(server.node).toBe(a!.name);
    // The host routes every pod CIDR: the test reaches the pod directly.
    const fromHost = await waitFor("the server answering from the host", async () => {
      const r = await fetch(`http://${server.ip}:${PORT}/`, { signal: AbortSignal.timeout(2_000) }).catch(
        () => undefined,
      );
      return r?.ok ? r.text() : undefined;
    });
    expect(fromHost).toBe(a!.name);

    const url = `http://${server.ip}:${PORT}/`;
    await kubectl(["apply", "-f", "-"], JSON.stringify(pinnedPod("client", b!.name, CLIENT, [url], "Never")));
    const client = await waitFor(
      "the client pod to finish",
      async () => {
        const p = (await podPlaces(ns, "app=client"))[0];
        return p?.phase === "Succeeded" || p?.phase === "Failed" ? p : undefined;
      },
      120_000,
    );
    const log = (await kubectl(["logs", "-n", ns, "client"])).trim();
    console.log(`[multinode] pod on ${client.node} (${client.ip}) -> pod on ${server.node} (${server.ip}): ${log}`);
    expect(client.node).toBe(b!.name);
    expect(client.phase).toBe("Succeeded");
    const out = JSON.parse(log.split("\n").at(-1)!) as {
      peer: { status: number; body: string };
      api: { status: number; body: string };
      apiHost: string;
    };
    expect(out.peer).toEqual({ status: 200, body: a!.name });
    // The kubelet injects the `kubernetes` Service's ClusterIP; any HTTP answer (200, or 401/403 for
    // an anonymous caller) means kube-proxy carried the connection to the API server.
    expect(out.apiHost).toMatch(/^10\.96\./);
    expect([200, 401, 403]).toContain(out.api.status);
  });

  it("the chart's two operator replicas run on different nodes and exactly one leads", async () => {
    op = await installMultiNodeOperator();
    const replicas = await op.replicas();
    const leader = await op.leader();
    console.log(
      `[multinode] operator replicas: ${replicas
        .map(
          (r) =>
            `${r.name} on ${r.node} ready=${r.ready} leading=${r.readyz?.leading} leaderLabel=${r.labels["trellis.dev/leader"] ?? "-"}`,
        )
        .join("; ")}; Lease holder ${leader?.pod}`,
    );
    expect(replicas).toHaveLength(2);
    expect(new Set(replicas.map((r) => r.node)).size).toBe(2);
    expect(replicas.every((r) => r.phase === "Running" && r.ready)).toBe(true);
    // One leader: the Lease holder, the only replica reporting leading and labelled for the Service.
    expect(replicas.filter((r) => r.readyz?.leading).map((r) => r.name)).toEqual([leader?.pod]);
    const labelled = await waitFor("the leader label on the Lease holder only", async () => {
      const l = (await op!.replicas()).filter((r) => r.labels["trellis.dev/leader"] === "true").map((r) => r.name);
      return l.length === 1 ? l : undefined;
    });
    expect(labelled).toEqual([leader?.pod]);
  });
});
