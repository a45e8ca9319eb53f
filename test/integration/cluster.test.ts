// Proof of life of the cluster the project runs on: real apiserver, scheduler, controller-manager,
// kubelet and containerd. Each test works in its own namespace and removes it.
import { createServer } from "node:net";
import { AppsV1Api, CoreV1Api, type V1Deployment, type V1Pod } from "@kubernetes/client-node";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  RUNTIME_IMAGE,
  componentLogHint,
  createTestNamespace,
  deleteTestNamespace,
  isNotFound,
  loadKubeConfig,
  namespaceEvents,
  waitFor,
} from "./support/cluster.js";

const kc = loadKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);

/** A namespace for one test, removed when it ends; on failure its events and the logs are shown first. */
async function testNamespace(prefix: string): Promise<string> {
  const ns = await createTestNamespace(core, prefix);
  onTestFinished(async ({ task }) => {
    if (task.result?.state === "fail") {
      const events = await namespaceEvents(core, ns).catch((err: Error) => `(events unavailable: ${err.message})`);
      console.error(`events in ${ns}:\n${events}\n${componentLogHint()}`);
    }
    await deleteTestNamespace(core, ns);
  });
  return ns;
}

async function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

function podReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

function deployment(name: string, containerSpec: Record<string, unknown>, hostNetwork: boolean): V1Deployment {
  const labels = { app: name };
  return {
    metadata: { name, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          hostNetwork,
          terminationGracePeriodSeconds: 1,
          containers: [{ name: "main", image: RUNTIME_IMAGE, imagePullPolicy: "Never", ...containerSpec }],
        },
      },
    },
  };
}

describe("local cluster", () => {
  it("runs a pod from the runtime image to completion and reads its logs through the API", async () => {
    const ns = await testNamespace("it-cluster-pod");
    // Pod network (not hostNetwork): the CNI bridge must give it an address of its own.
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: "hello" },
        spec: {
          restartPolicy: "Never",
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: "py",
              image: RUNTIME_IMAGE,
              imagePullPolicy: "Never",
              command: ["python3", "-c", "import sys; print('trellis-python %d.%d' % sys.version_info[:2])"],
            },
            {
              name: "node",
              image: RUNTIME_IMAGE,
              imagePullPolicy: "Never",
              command: ["node", "-e", "console.log('trellis-node ' + process.versions.node.split('.')[0])"],
            },
          ],
        },
      },
    });

    const pod = await waitFor(
      "pod hello to succeed",
      async () => {
        const p = await core.readNamespacedPod({ name: "hello", namespace: ns });
        if (p.status?.phase === "Failed") throw new Error(`pod failed: ${JSON.stringify(p.status)}`);
        return p.status?.phase === "Succeeded" ? p : undefined;
      },
      90_000,
    );
    expect(pod.status?.podIP).toBeTruthy();
    expect(pod.status?.podIP).not.toBe(pod.status?.hostIP);

    // Logs travel apiserver -> kubelet (TLS both ways) -> container log file.
    const pyLog = await core.readNamespacedPodLog({ name: "hello", namespace: ns, container: "py" });
    const nodeLog = await core.readNamespacedPodLog({ name: "hello", namespace: ns, container: "node" });
    expect(pyLog.trim()).toBe("trellis-python 3.11");
    expect(nodeLog.trim()).toBe("trellis-node 20");
  });

  it("brings a hostNetwork Deployment's pod to Ready through its readiness probe", async () => {
    const ns = await testNamespace("it-cluster-deploy");
    const port = await freeLocalPort();
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment(
        "web",
        {
          command: ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1"],
          readinessProbe: {
            httpGet: { host: "127.0.0.1", port, path: "/" },
            periodSeconds: 1,
            failureThreshold: 60,
          },
        },
        true,
      ),
    });

    const ready = await waitFor(
      "deployment web to have a ready replica",
      async () => {
        const d = await apps.readNamespacedDeployment({ name: "web", namespace: ns });
        return (d.status?.readyReplicas ?? 0) >= 1 ? d : undefined;
      },
      90_000,
    );
    expect(ready.status?.availableReplicas).toBe(1);

    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: "app=web" });
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0]!;
    expect(podReady(pod)).toBe(true);
    expect(pod.spec?.nodeName).toBeTruthy(); // placed by the scheduler
    expect(pod.metadata?.ownerReferences?.[0]?.kind).toBe("ReplicaSet"); // made by the controller-manager

    // hostNetwork: the pod's server answers on this machine's loopback.
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(200);
  });

  it("lets a hostNetwork pod authenticate to the apiserver with its ServiceAccount token", async () => {
    const ns = await testNamespace("it-cluster-sa");
    // SelfSubjectReview is open to every authenticated user: it echoes who the token says we are.
    const script = [
      "import json, os, ssl, urllib.request",
      "d = '/var/run/secrets/kubernetes.io/serviceaccount/'",
      "url = 'https://%s:%s/apis/authentication.k8s.io/v1/selfsubjectreviews' % (os.environ['KUBERNETES_SERVICE_HOST'], os.environ['KUBERNETES_SERVICE_PORT'])",
      "body = json.dumps({'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'}).encode()",
      "headers = {'Authorization': 'Bearer ' + open(d + 'token').read(), 'Content-Type': 'application/json'}",
      "req = urllib.request.Request(url, data=body, headers=headers, method='POST')",
      "ctx = ssl.create_default_context(cafile=d + 'ca.crt')",
      "print(json.load(urllib.request.urlopen(req, context=ctx))['status']['userInfo']['username'])",
    ].join("\n");
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: "whoami" },
        spec: {
          hostNetwork: true,
          restartPolicy: "Never",
          containers: [
            {
              name: "main",
              image: RUNTIME_IMAGE,
              imagePullPolicy: "Never",
              command: ["python3", "-c", script],
              // No kube-proxy here: the in-cluster address is the apiserver's loopback listener.
              env: [
                { name: "KUBERNETES_SERVICE_HOST", value: "127.0.0.1" },
                { name: "KUBERNETES_SERVICE_PORT", value: "6443" },
              ],
            },
          ],
        },
      },
    });
    await waitFor(
      "pod whoami to succeed",
      async () => {
        const p = await core.readNamespacedPod({ name: "whoami", namespace: ns });
        if (p.status?.phase === "Failed") {
          const log = await core.readNamespacedPodLog({ name: "whoami", namespace: ns }).catch(() => "");
          throw new Error(`pod failed: ${log}`);
        }
        return p.status?.phase === "Succeeded" ? true : undefined;
      },
      90_000,
    );
    const log = await core.readNamespacedPodLog({ name: "whoami", namespace: ns });
    expect(log.trim()).toBe(`system:serviceaccount:${ns}:default`);
  });

  it("garbage-collects a Deployment's ReplicaSet and Pods when the Deployment is deleted", async () => {
    const ns = await testNamespace("it-cluster-gc");
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment("sleeper", { command: ["python3", "-c", "import time; time.sleep(3600)"] }, true),
    });
    await waitFor(
      "a running pod of deployment sleeper",
      async () => {
        const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: "app=sleeper" });
        return pods.items.some((p) => p.status?.phase === "Running") ? true : undefined;
      },
      90_000,
    );
    const replicaSets = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: "app=sleeper" });
    expect(replicaSets.items).toHaveLength(1);

    await apps.deleteNamespacedDeployment({ name: "sleeper", namespace: ns, propagationPolicy: "Background" });

    await waitFor(
      "the ReplicaSet and Pods of sleeper to be garbage-collected",
      async () => {
        const [rs, pods] = await Promise.all([
          apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: "app=sleeper" }),
          core.listNamespacedPod({ namespace: ns, labelSelector: "app=sleeper" }),
        ]);
        return rs.items.length === 0 && pods.items.length === 0 ? true : undefined;
      },
      60_000,
    );
    await expect(apps.readNamespacedDeployment({ name: "sleeper", namespace: ns })).rejects.toSatisfy(isNotFound);
  });
});
