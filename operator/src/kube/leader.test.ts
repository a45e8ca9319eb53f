import { afterEach, describe, expect, it } from "vitest";
import { KubeApiError } from "./errors.js";
import { type Lease, LeaderElector, type LeaseWriter, decideLease, microTime } from "./leader.js";
import type { KubeObject } from "./types.js";

const lease = (holder: string, rv: string, durationS = 15): Lease => ({
  metadata: { name: "l", namespace: "ns", resourceVersion: rv },
  spec: { holderIdentity: holder, leaseDurationSeconds: durationS },
});

describe("decideLease", () => {
  it("creates a missing lease and renews our own", () => {
    expect(decideLease(undefined, "me", undefined, 0, 15000).decision.action).toBe("create");
    expect(decideLease(lease("me", "3"), "me", undefined, 0, 15000).decision.action).toBe("renew");
  });

  it("takes an empty holder at once", () => {
    expect(decideLease(lease("", "3"), "me", undefined, 0, 15000).decision.action).toBe("acquire");
  });

  it("waits out another holder's lease duration on its own clock", () => {
    const first = decideLease(lease("other", "3"), "me", undefined, 1000, 15000);
    expect(first.decision).toEqual({ action: "wait", holder: "other", expiresAt: 16000 });
    // same version seen later: still counted from the first observation
    const mid = decideLease(lease("other", "3"), "me", first.observation, 15999, 15000);
    expect(mid.decision.action).toBe("wait");
    const late = decideLease(lease("other", "3"), "me", mid.observation, 16000, 15000);
    expect(late.decision.action).toBe("acquire");
  });

  it("restarts the clock when the holder renews", () => {
    const a = decideLease(lease("other", "3"), "me", undefined, 0, 15000);
    const b = decideLease(lease("other", "4"), "me", a.observation, 14000, 15000);
    expect(b.decision).toEqual({ action: "wait", holder: "other", expiresAt: 29000 });
  });

  it("uses the lease's own duration", () => {
    const a = decideLease(lease("other", "3", 1), "me", undefined, 0, 15000);
    expect(decideLease(lease("other", "3", 1), "me", a.observation, 1000, 15000).decision.action).toBe("acquire");
  });
});

describe("microTime", () => {
  it("has six fractional digits", () => {
    expect(microTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toBe("2026-01-02T03:04:05.678000Z");
  });
});

/** An in-memory Lease with resourceVersion compare-and-swap, to drive the loop's timing. */
class MemoryLeases implements LeaseWriter {
  obj: Lease | undefined;
  rv = 0;
  down = false;
  private check() {
    if (this.down) throw new Error("connection refused");
  }
  async get<T extends KubeObject>(): Promise<T> {
    this.check();
    if (!this.obj) throw new KubeApiError(404, "NotFound", "not found", "GET", "/");
    return structuredClone(this.obj) as unknown as T;
  }
  async create<T extends KubeObject>(o: T): Promise<T> {
    this.check();
    if (this.obj) throw new KubeApiError(409, "AlreadyExists", "exists", "POST", "/");
    this.obj = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++this.rv) } } as Lease;
    return structuredClone(this.obj) as unknown as T;
  }
  async replace<T extends KubeObject>(o: T): Promise<T> {
    this.check();
    if (!this.obj) throw new KubeApiError(404, "NotFound", "not found", "PUT", "/");
    if (o.metadata.resourceVersion !== this.obj.metadata.resourceVersion)
      throw new KubeApiError(409, "Conflict", "the object has been modified", "PUT", "/");
    this.obj = { ...structuredClone(o), metadata: { ...o.metadata, resourceVersion: String(++this.rv) } } as Lease;
    return structuredClone(this.obj) as unknown as T;
  }
}

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 2));
  }
}

const electors: LeaderElector[] = [];
afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop()));
});

function elector(writer: LeaseWriter, identity: string, log: string[]) {
  const e = new LeaderElector({
    writer,
    namespace: "ns",
    name: "l",
    identity,
    leaseDurationSeconds: 1,
    renewIntervalMs: 100,
    retryIntervalMs: 40,
    renewDeadlineMs: 300,
    onStartedLeading: () => log.push(`${identity} start`),
    onStoppedLeading: () => log.push(`${identity} stop`),
  });
  electors.push(e);
  return e;
}

describe("LeaderElector loop", () => {
  it("one of two candidates leads; release hands over quickly", async () => {
    const store = new MemoryLeases();
    const log: string[] = [];
    const a = elector(store, "a", log);
    const b = elector(store, "b", log);
    a.start();
    await until(() => a.isLeader());
    b.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(b.isLeader()).toBe(false);
    const t0 = Date.now();
    await a.stop();
    await until(() => b.isLeader());
    expect(Date.now() - t0).toBeLessThan(500); // retry period, not the lease duration
    expect(log).toEqual(["a start", "a stop", "b start"]);
    expect(store.obj?.spec?.leaseTransitions).toBe(1);
  });

  it("a leader that cannot renew stops leading before the lease expires", async () => {
    const store = new MemoryLeases();
    const log: string[] = [];
    const a = elector(store, "a", log);
    a.start();
    await until(() => a.isLeader());
    store.down = true;
    const t0 = Date.now();
    await until(() => !a.isLeader());
    const took = Date.now() - t0;
    expect(took).toBeLessThan(1000); // lease duration: nobody else could have taken it yet
    expect(log).toEqual(["a start", "a stop"]);
  });

  it("a leader whose lease was taken over steps down on its next renew", async () => {
    const store = new MemoryLeases();
    const log: string[] = [];
    const a = elector(store, "a", log);
    a.start();
    await until(() => a.isLeader());
    // someone forcibly rewrites the lease
    store.obj = { ...store.obj!, spec: { ...store.obj!.spec, holderIdentity: "intruder" } };
    store.obj.metadata.resourceVersion = String(++store.rv);
    await until(() => !a.isLeader());
    expect(a.leader()).toBe("intruder");
  });
});
