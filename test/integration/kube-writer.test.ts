// The object writer against the real apiserver: creates of core kinds and CRDs, status merge
// patches with and without a resourceVersion precondition, metadata patches, deletes, and the
// typed errors callers branch on.
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { KubeClient, loadKubeConfig as loadKc } from "../../operator/src/kube/client.js";
import { isAlreadyExists, isConflict, isInvalid, isNotFound } from "../../operator/src/kube/errors.js";
import type { KubeObject } from "../../operator/src/kube/types.js";
import { KubeObjectWriter } from "../../operator/src/kube/writer.js";
import { createTestNamespace, deleteTestNamespace, kubeconfigPath, loadKubeConfig } from "./support/cluster.js";
import { applyCrds } from "../support/kube.js";

interface App extends KubeObject {
  spec: Record<string, unknown>;
  status?: { observedGeneration?: number; conditions?: { type: string; status: string; reason?: string }[] };
}

const core = loadKubeConfig().makeApiClient(CoreV1Api);
let client: KubeClient;
let writer: KubeObjectWriter;

beforeAll(async () => {
  await applyCrds();
  client = await KubeClient.create(loadKc(kubeconfigPath()), { maxSockets: 16 });
  writer = new KubeObjectWriter(client);
});
afterAll(() => client.close());

async function namespace(): Promise<string> {
  const ns = await createTestNamespace(core, "kube-writer");
  onTestFinished(() => deleteTestNamespace(core, ns));
  return ns;
}

const app = (ns: string, name: string): App => ({
  apiVersion: "trellis.dev/v1alpha1",
  kind: "Application",
  metadata: { namespace: ns, name },
  spec: { entrypoint: "main", module: "app" },
});

const ref = (o: KubeObject) => ({
  apiVersion: o.apiVersion!,
  kind: o.kind!,
  namespace: o.metadata.namespace!,
  name: o.metadata.name!,
});

describe("object writer on a real apiserver", () => {
  it("replaces status whole, keeping nulls inside values (a merge patch would drop them)", async () => {
    const ns = await namespace();
    const fc = await writer.create<KubeObject & { status?: Record<string, unknown> }>({
      apiVersion: "trellis.dev/v1alpha1",
      kind: "FunctionCall",
      metadata: { namespace: ns, name: "nulls" },
      spec: { application: "a", function: "f" },
    } as KubeObject);
    const output = { value: { trace: null, items: [1, null] } };
    const out = await writer.replaceStatus<typeof fc>(ref(fc), { phase: "Succeeded", output });
    expect(out.status).toEqual({ phase: "Succeeded", output });
    const stale = writer.replaceStatus(
      { ...ref(fc), resourceVersion: fc.metadata.resourceVersion },
      { phase: "Failed" },
    );
    await expect(stale).rejects.toThrow();
  });

  it("patches status by merge, and a stale resourceVersion is a conflict", async () => {
    const ns = await namespace();
    const created = await writer.create(app(ns, "a"));
    expect(created.metadata.uid).toBeTruthy();

    const first = await writer.patchStatus<App>(ref(created), { observedGeneration: 1 });
    expect(first.status?.observedGeneration).toBe(1);
    const ready = { type: "Ready", status: "False", reason: "NoPods", lastTransitionTime: "2026-01-01T00:00:00Z" };
    const second = await writer.patchStatus<App>(
      { ...ref(created), resourceVersion: first.metadata.resourceVersion },
      { conditions: [ready] },
    );
    expect(second.status).toMatchObject({ observedGeneration: 1, conditions: [{ type: "Ready", reason: "NoPods" }] });

    // first's version is stale now: compare-and-swap must fail
    const err = await writer
      .patchStatus({ ...ref(created), resourceVersion: first.metadata.resourceVersion }, { observedGeneration: 9 })
      .catch((e: unknown) => e);
    expect(isConflict(err)).toBe(true);
    expect(isAlreadyExists(err)).toBe(false);
    const now = await writer.get<App>(ref(created));
    expect(now.status?.observedGeneration).toBe(1);
    // the status patch did not touch the spec, and a spec change through /status is ignored
    const viaStatus = await client.request<App>(
      "PATCH",
      `/apis/trellis.dev/v1alpha1/namespaces/${ns}/applications/a/status`,
      {
        body: { spec: { entrypoint: "other" } },
        contentType: "application/merge-patch+json",
      },
    );
    expect(viaStatus.spec.entrypoint).toBe("main");
    // managed fields carry our field manager
    const managers = (now.metadata as { managedFields?: { manager: string }[] }).managedFields?.map((m) => m.manager);
    expect(managers).toContain("trellis-operator");
  });

  it("tells existing, missing and invalid objects apart; 422 names the field", async () => {
    const ns = await namespace();
    await writer.create(app(ns, "dup"));
    const dup = await writer.create(app(ns, "dup")).catch((e: unknown) => e);
    expect(isAlreadyExists(dup)).toBe(true);
    expect(isConflict(dup)).toBe(false);

    const missing = await writer.patchStatus({ ...ref(app(ns, "nope")) }, { observedGeneration: 1 }).catch((e) => e);
    expect(isNotFound(missing)).toBe(true);

    const bad = await writer
      .create({ ...app(ns, "bad"), spec: { entrypoint: "1 not python", module: "app" } })
      .catch((e) => e);
    expect(isInvalid(bad)).toBe(true);
    expect((bad as Error).message).toMatch(/spec\.entrypoint/);

    const badName = await writer
      .create({ apiVersion: "v1", kind: "ConfigMap", metadata: { namespace: ns, name: "Bad_Name" } })
      .catch((e) => e);
    expect(isInvalid(badName)).toBe(true);
    expect((badName as Error).message).toMatch(/metadata\.name/);

    await expect(writer.create({ metadata: { name: "x" } })).rejects.toThrow(/apiVersion and kind are required/);
  });

  it("writes core kinds: Secret, ConfigMap, Lease, Event; patches metadata; deletes", async () => {
    const ns = await namespace();
    const secret = await writer.create({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { namespace: ns, name: "cred", labels: { a: "1", b: "2" } },
      stringData: { token: "t" },
    } as KubeObject);
    const patched = await writer.patchMeta(ref(secret), {
      labels: { a: null, c: "3" },
      annotations: { note: "x" },
      finalizers: ["trellis.dev/test"],
    });
    expect(patched.metadata.labels).toEqual({ b: "2", c: "3" });
    expect(patched.metadata.finalizers).toEqual(["trellis.dev/test"]);
    await writer.delete(ref(secret));
    // held by the finalizer until it is cleared
    const held = await writer.get(ref(secret));
    expect(held.metadata.deletionTimestamp).toBeTruthy();
    await writer.patchMeta(ref(secret), { finalizers: [] });
    const gone = await writer.get(ref(secret)).catch((e) => e);
    expect(isNotFound(gone)).toBe(true);
    await writer.delete(ref(secret)); // deleting a missing object succeeds

    const lease = await writer.create({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { namespace: ns, name: "l" },
      spec: { holderIdentity: "me", leaseDurationSeconds: 15 },
    } as KubeObject);
    expect(lease.metadata.resourceVersion).toBeTruthy();
    const cm = await writer.create<KubeObject>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { namespace: ns, name: "c" },
    });
    const ev = await writer.create({
      apiVersion: "v1",
      kind: "Event",
      metadata: { namespace: ns, name: "c.1" },
      involvedObject: { apiVersion: "v1", kind: "ConfigMap", name: "c", namespace: ns, uid: cm.metadata.uid },
      reason: "Test",
      message: "hello",
      type: "Normal",
    } as KubeObject);
    expect(ev.metadata.name).toBe("c.1");
  });

  it("deletes with foreground propagation through owner references", async () => {
    const ns = await namespace();
    const owner = await writer.create<KubeObject>({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { namespace: ns, name: "owner" },
    });
    await writer.create({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        namespace: ns,
        name: "child",
        ownerReferences: [
          { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid!, blockOwnerDeletion: true },
        ],
      },
    });
    await writer.delete(ref(owner), { propagation: "Foreground" });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const child = await writer.get({ ...ref(owner), name: "child" }).catch((e) => e);
      if (isNotFound(child)) break;
      if (Date.now() > deadline) throw new Error("child was not garbage-collected within 30 s");
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it("keeps connections alive under concurrency", async () => {
    const ns = await namespace();
    const n = 200;
    const names = Array.from({ length: n }, (_, i) => `cm-${i}`);
    await Promise.all(
      names.map((name) => writer.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { namespace: ns, name } })),
    );
    const list = await client.request<{ items: KubeObject[] }>("GET", `/api/v1/namespaces/${ns}/configmaps`);
    expect(list.items.filter((o) => o.metadata.name!.startsWith("cm-")).length).toBe(n);
    expect(client.stats.inFlight).toBe(0);
  });
});
