// The event recorder against the real apiserver: Events are accepted as written (core/v1 with
// reporting fields) and repeats aggregate into one Event's count.
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { KubeClient, loadKubeConfig as loadKc } from "../../operator/src/kube/client.js";
import { KubeEventRecorder } from "../../operator/src/kube/events.js";
import type { KubeObject } from "../../operator/src/kube/types.js";
import { KubeObjectWriter } from "../../operator/src/kube/writer.js";
import { createTestNamespace, deleteTestNamespace, kubeconfigPath, loadKubeConfig } from "./support/cluster.js";
import { applyCrds } from "../support/kube.js";

interface CoreEvent extends KubeObject {
  reason: string;
  message: string;
  count: number;
  involvedObject: { uid?: string; name: string; kind: string };
  reportingComponent?: string;
  reportingInstance?: string;
}

const core = loadKubeConfig().makeApiClient(CoreV1Api);
let client: KubeClient;
let writer: KubeObjectWriter;

beforeAll(async () => {
  await applyCrds();
  client = await KubeClient.create(loadKc(kubeconfigPath()));
  writer = new KubeObjectWriter(client);
});
afterAll(() => client.close());

describe("event recorder on a real apiserver", () => {
  it("writes Events on an object and aggregates repeats into count", async () => {
    const ns = await createTestNamespace(core, "kube-events");
    onTestFinished(() => deleteTestNamespace(core, ns));
    const obj = await writer.create<KubeObject>({
      apiVersion: "trellis.dev/v1alpha1",
      kind: "Application",
      metadata: { namespace: ns, name: "app" },
      spec: { entrypoint: "main", module: "app" },
    } as KubeObject);
    const rec = new KubeEventRecorder({ writer, reportingInstance: "test-0" });
    rec.record(obj, "Warning", "PodLost", "pod p-1 disappeared");
    await rec.flush();
    rec.record(obj, "Warning", "PodLost", "pod p-1 disappeared");
    rec.record(obj, "Warning", "PodLost", "pod p-1 disappeared");
    rec.record(obj, "Normal", "Ready", "all functions have containers");
    await rec.flush();
    expect(rec.stats).toMatchObject({ created: 2, patched: 1, failed: 0 });

    const list = await client.request<{ items: CoreEvent[] }>("GET", `/api/v1/namespaces/${ns}/events`);
    const ours = list.items.filter((e) => e.involvedObject.uid === obj.metadata.uid);
    const lost = ours.find((e) => e.reason === "PodLost")!;
    expect(lost.count).toBe(3);
    expect(lost.message).toBe("pod p-1 disappeared");
    expect(lost.reportingComponent).toBe("trellis.dev/operator");
    expect(lost.reportingInstance).toBe("test-0");
    expect(ours.find((e) => e.reason === "Ready")?.count).toBe(1);
  });
});
