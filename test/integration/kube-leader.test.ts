// Leader election on a real Lease: two electors in one process, exactly one leads at any time;
// the standby takes over when the leader releases, or when the leader is cut off from the API
// server (it must step down before the standby may acquire), or when the leader's renew answers
// are held back (its late success must not make it lead, and its writes are fenced).
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { KubeClient, loadKubeConfig as loadKc } from "../../operator/src/kube/client.js";
import { FencedError } from "../../operator/src/kube/fence.js";
import { type Lease, LeaderElector, type LeaseWriter } from "../../operator/src/kube/leader.js";
import type { KubeObject } from "../../operator/src/kube/types.js";
import { KubeObjectWriter } from "../../operator/src/kube/writer.js";
import {
  createTestNamespace,
  deleteTestNamespace,
  kubeconfigPath,
  loadKubeConfig,
  waitFor,
} from "./support/cluster.js";

const core = loadKubeConfig().makeApiClient(CoreV1Api);
let client: KubeClient;
let writer: KubeObjectWriter;

beforeAll(async () => {
  client = await KubeClient.create(loadKc(kubeconfigPath()));
  writer = new KubeObjectWriter(client);
});
afterAll(() => client.close());

async function namespace(): Promise<string> {
  const ns = await createTestNamespace(core, "kube-leader");
  onTestFinished(() => deleteTestNamespace(core, ns));
  return ns;
}

/** A writer that can be cut off, as a network partition would. */
class Partitionable implements LeaseWriter {
  cut = false;
  constructor(private readonly w: KubeObjectWriter) {}
  private check() {
    if (this.cut) throw new Error("connect ECONNREFUSED (partitioned)");
  }
  async get<T extends KubeObject>(r: Parameters<KubeObjectWriter["get"]>[0]): Promise<T> {
    this.check();
    return this.w.get<T>(r);
  }
  async create<T extends KubeObject>(o: T): Promise<T> {
    this.check();
    return this.w.create<T>(o);
  }
  async replace<T extends KubeObject>(o: T): Promise<T> {
    this.check();
    return this.w.replace<T>(o);
  }
}

/** A writer whose renew answers can be held back: the write reaches the server, its answer waits. */
class Gated implements LeaseWriter {
  holding = false;
  private held: (() => void)[] = [];
  constructor(private readonly w: KubeObjectWriter) {}
  get pending(): number {
    return this.held.length;
  }
  get<T extends KubeObject>(r: Parameters<KubeObjectWriter["get"]>[0], o?: { timeoutMs?: number }): Promise<T> {
    return this.w.get<T>(r, o);
  }
  create<T extends KubeObject>(obj: T, o?: { timeoutMs?: number }): Promise<T> {
    return this.w.create<T>(obj, o);
  }
  async replace<T extends KubeObject>(obj: T, o?: { timeoutMs?: number }): Promise<T> {
    const out = await this.w.replace<T>(obj, o);
    if (this.holding) await new Promise<void>((r) => this.held.push(r));
    return out;
  }
  release(): void {
    this.holding = false;
    for (const r of this.held.splice(0)) r();
  }
}

function elector(ns: string, identity: string, w: LeaseWriter, log: string[]) {
  const e = new LeaderElector({
    writer: w,
    namespace: ns,
    name: "trellis-operator",
    identity,
    leaseDurationSeconds: 3,
    renewIntervalMs: 500,
    retryIntervalMs: 200,
    renewDeadlineMs: 2000,
    onStartedLeading: () => log.push(`${identity} start`),
    onStoppedLeading: () => log.push(`${identity} stop`),
  });
  onTestFinished(() => e.stop());
  return e;
}

/** Samples both electors until `done`; fails if both ever lead at once. */
async function watchExclusive(a: LeaderElector, b: LeaderElector, done: () => boolean, timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    expect(a.isLeader() && b.isLeader()).toBe(false);
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("leader election on a real Lease", () => {
  it("exactly one of two leads; the standby takes over quickly after a release", async () => {
    const ns = await namespace();
    const log: string[] = [];
    const a = elector(ns, "op-a", writer, log);
    const b = elector(ns, "op-b", writer, log);
    a.start();
    b.start();
    await watchExclusive(a, b, () => a.isLeader() || b.isLeader(), 10_000);
    // stay stable through several renewals
    const until = Date.now() + 1500;
    await watchExclusive(a, b, () => Date.now() > until, 5000);
    const [leader, standby] = a.isLeader() ? [a, b] : [b, a];
    expect(standby.leader()).toBe(leader === a ? "op-a" : "op-b");

    const t0 = Date.now();
    await leader.stop();
    expect(leader.isLeader()).toBe(false);
    await watchExclusive(a, b, () => standby.isLeader(), 5000);
    expect(Date.now() - t0).toBeLessThan(1500); // a retry period, not a lease duration
    const lease = await writer.get<Lease>({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      namespace: ns,
      name: "trellis-operator",
    });
    expect(lease.spec?.holderIdentity).toBe(standby === a ? "op-a" : "op-b");
    expect(lease.spec?.leaseTransitions).toBe(1);
    expect(log.length).toBe(3);
  });

  it("a leader cut off from the server steps down before the standby takes over", async () => {
    const ns = await namespace();
    const log: string[] = [];
    const cutA = new Partitionable(writer);
    const a = elector(ns, "op-a", cutA, log);
    a.start();
    await waitFor("op-a leads", async () => (a.isLeader() ? true : undefined), 10_000, 20);
    const b = elector(ns, "op-b", writer, log);
    b.start();
    const t0 = Date.now();
    cutA.cut = true;
    await watchExclusive(a, b, () => b.isLeader(), 10_000);
    const tookOver = Date.now() - t0;
    expect(log).toEqual(["op-a start", "op-a stop", "op-b start"]);
    // a stopped within its renew deadline (2 s); b waited out the 3 s lease from its own first sight
    expect(tookOver).toBeGreaterThanOrEqual(2500);
    expect(tookOver).toBeLessThan(6000);
  });

  it("a leader whose renew answer comes back late does not lead again, and its writes are fenced", async () => {
    const ns = await namespace();
    const log: string[] = [];
    const gated = new Gated(writer);
    const a = elector(ns, "op-a", gated, log);
    const aWriter = new KubeObjectWriter(client, undefined, { fence: (what) => a.fence(what) });
    const cm = { apiVersion: "v1", kind: "ConfigMap", namespace: ns, name: "fenced-target" };
    await writer.create({ ...cm, metadata: { namespace: ns, name: cm.name }, data: { v: "1" } });
    const value = async () => (await writer.get<KubeObject & { data?: { v?: string } }>(cm)).data?.v;

    a.start();
    await waitFor("op-a leads", async () => (a.isLeader() ? true : undefined), 10_000, 20);
    await aWriter.patch(cm, { data: { v: "2" } }); // the fence is open while it leads
    expect(await value()).toBe("2");
    const b = elector(ns, "op-b", writer, log);
    b.start();

    gated.holding = true; // a's next renew is written on the server, its answer held back
    await waitFor("a renew held", async () => (gated.pending > 0 ? true : undefined), 5_000, 10);
    await watchExclusive(a, b, () => b.isLeader(), 10_000);
    expect(log).toEqual(["op-a start", "op-a stop", "op-b start"]);

    gated.release(); // the late success arrives after b took over
    const until = Date.now() + 1000; // several of a's retry periods
    await watchExclusive(a, b, () => Date.now() > until, 5000);
    expect(a.isLeader()).toBe(false);
    expect(a.leader()).toBe("op-b");
    expect(log).toEqual(["op-a start", "op-a stop", "op-b start"]);

    const err = await aWriter.patch(cm, { data: { v: "3" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FencedError);
    expect(String(err)).toMatch(new RegExp(`patch ConfigMap ${ns}/fenced-target: refused`));
    expect(await value()).toBe("2");
  });
});
