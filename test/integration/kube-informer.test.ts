// The informer against the real apiserver: it follows creates, updates and deletes (label-filtered,
// indexed), recovers when its watch connection is broken, and stays consistent when resumed from
// an old resourceVersion (the server answers 410 Gone or replays; either way the cache is right).
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { KubeClient, loadKubeConfig as loadKc } from "../../operator/src/kube/client.js";
import { createInformer } from "../../operator/src/kube/informer.js";
import type { KubeObject, WatchEventType } from "../../operator/src/kube/types.js";
import { KubeObjectWriter } from "../../operator/src/kube/writer.js";
import {
  createTestNamespace,
  deleteTestNamespace,
  kubeconfigPath,
  loadKubeConfig,
  waitFor,
} from "./support/cluster.js";
import { applyCrds } from "../support/kube.js";

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
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

async function namespace(): Promise<string> {
  const ns = await createTestNamespace(core, "kube-informer");
  onTestFinished(() => deleteTestNamespace(core, ns));
  return ns;
}

function informer(ns: string, opts: { relistIntervalMs?: number } = {}) {
  const inf = createInformer<ConfigMap>(client, {
    apiVersion: "v1",
    kind: "ConfigMap",
    namespace: ns,
    labelSelector: "trellis.dev/test=informer",
    indexers: { color: (o) => (o.data?.color ? [o.data.color] : []) },
    backoffInitialMs: 20,
    ...opts,
  });
  const events: string[] = [];
  inf.onEvent((t: WatchEventType, o) => events.push(`${t} ${o.metadata.name}`));
  onTestFinished(() => inf.stop());
  return { inf, events };
}

const cm = (ns: string, name: string, color: string, labelled = true): ConfigMap => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { namespace: ns, name, labels: labelled ? { "trellis.dev/test": "informer" } : {} },
  data: { color },
});

const until = (what: string, cond: () => boolean, timeoutMs = 15_000) =>
  waitFor(what, async () => (cond() ? true : undefined), timeoutMs, 5);

describe("informer on a real apiserver", () => {
  it("follows create, update and delete of selected objects, with indexes", async () => {
    const ns = await namespace();
    await writer.create(cm(ns, "before", "red"));
    const { inf, events } = informer(ns);
    await inf.start();
    expect(inf.synced()).toBe(true);
    expect(inf.list(ns).map((o) => o.metadata.name)).toEqual(["before"]);
    expect(inf.get(`${ns}/before`)?.kind).toBe("ConfigMap"); // stamped on list items

    await writer.create(cm(ns, "a", "blue"));
    await writer.create(cm(ns, "ignored", "blue", false));
    await until("ADDED a", () => events.includes("ADDED a"));
    expect(inf.byIndex("color", "blue").map((o) => o.metadata.name)).toEqual(["a"]);

    await client.request("PATCH", `/api/v1/namespaces/${ns}/configmaps/a`, {
      body: { data: { color: "green" } },
      contentType: "application/merge-patch+json",
    });
    await until("MODIFIED a", () => events.includes("MODIFIED a"));
    expect(inf.byIndex("color", "blue")).toEqual([]);
    expect(inf.byIndex("color", "green").length).toBe(1);

    await writer.delete({ apiVersion: "v1", kind: "ConfigMap", namespace: ns, name: "a" });
    await until("DELETED a", () => events.includes("DELETED a"));
    expect(inf.get(`${ns}/a`)).toBeUndefined();
    expect(events).not.toContain("ADDED ignored");
    expect(inf.get(`${ns}/before`)?.metadata).not.toHaveProperty("managedFields");
  });

  it("recovers after its watch connection is broken", async () => {
    const ns = await namespace();
    const { inf, events } = informer(ns);
    await inf.start();
    for (let round = 0; round < 3; round++) {
      const starts = inf.stats.watchStarts;
      inf.breakWatch();
      await writer.create(cm(ns, `after-break-${round}`, "red"));
      await until(`ADDED after-break-${round}`, () => events.includes(`ADDED after-break-${round}`));
      expect(inf.stats.watchStarts).toBeGreaterThan(starts);
    }
    expect(inf.list(ns).length).toBe(3);
  });

  it("stays consistent when the watch resumes from an old resourceVersion", async () => {
    const ns = await namespace();
    const { inf, events } = informer(ns);
    await inf.start();
    const oldRv = inf.lastResourceVersion();
    for (let i = 0; i < 5; i++) await writer.create(cm(ns, `c${i}`, "red"));
    await writer.delete({ apiVersion: "v1", kind: "ConfigMap", namespace: ns, name: "c0" });
    await until("DELETED c0", () => events.includes("DELETED c0"));
    const before = events.length;
    inf.breakWatch(oldRv); // replays from an old version, or 410 → relist
    await writer.create(cm(ns, "last", "red"));
    await until("ADDED last", () => events.includes("ADDED last"));
    // Nothing seen twice and nothing resurrected, whichever way the server answered.
    expect(events.slice(before)).toEqual(["ADDED last"]);
    expect(
      inf
        .list(ns)
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(["c1", "c2", "c3", "c4", "last"]);
  });

  it("a periodic relist reconciles the cache without duplicate events", async () => {
    const ns = await namespace();
    await writer.create(cm(ns, "x", "red"));
    const { inf, events } = informer(ns, { relistIntervalMs: 300 });
    await inf.start();
    await until("two periodic relists", () => inf.stats.periodicRelists >= 2);
    await writer.create(cm(ns, "y", "red"));
    await until("ADDED y", () => events.includes("ADDED y"));
    expect(events).toEqual(["ADDED x", "ADDED y"]);
    expect(inf.stats.relists).toBeGreaterThanOrEqual(2);
  });

  it("observe(): a written object is in the cache at once and its watch echo is not delivered twice", async () => {
    const ns = await namespace();
    const { inf, events } = informer(ns);
    await inf.start();
    const created = await writer.create(cm(ns, "mine", "red"));
    // false when the watch was faster than our own response (it happens): then it is cached too
    inf.observe(created);
    expect(inf.get(`${ns}/mine`)?.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
    await writer.create(cm(ns, "marker", "red"));
    await until("ADDED marker", () => events.includes("ADDED marker"));
    expect(events).toEqual(["ADDED mine", "ADDED marker"]);
  });

  it("watches a custom resource cluster-wide and stops cleanly", async () => {
    const ns = await namespace();
    const inf = createInformer<KubeObject>(client, {
      apiVersion: "trellis.dev/v1alpha1",
      kind: "Application",
      labelSelector: `trellis.dev/test-ns=${ns}`,
    });
    const seen: string[] = [];
    inf.onEvent((t, o) => seen.push(`${t} ${o.metadata.namespace}/${o.metadata.name}`));
    await inf.start();
    await writer.create({
      apiVersion: "trellis.dev/v1alpha1",
      kind: "Application",
      metadata: { namespace: ns, name: "app", labels: { "trellis.dev/test-ns": ns } },
      spec: { entrypoint: "main", module: "app" },
    } as KubeObject);
    await until("ADDED app", () => seen.includes(`ADDED ${ns}/app`));
    await inf.stop();
    expect(inf.stats.watchErrors).toBe(0);
  });
});
