import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
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

const electors: LeaderElector[] = [];

/** Moves the fake clock by `ms`, firing the timers due on the way, with promise callbacks settled. */
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

/** Fake-clock time of each callback, as "identity start"/"identity stop" → ms. */
type Log = { events: string[]; at: Map<string, number> };
const newLog = (): Log => ({ events: [], at: new Map() });

function elector(writer: LeaseWriter, identity: string, log: Log) {
  const note = (what: string) => {
    log.events.push(`${identity} ${what}`);
    log.at.set(`${identity} ${what}`, Date.now());
  };
  const e = new LeaderElector({
    writer,
    namespace: "ns",
    name: "l",
    identity,
    leaseDurationSeconds: 1,
    renewIntervalMs: 100,
    retryIntervalMs: 40,
    renewDeadlineMs: 300,
    onStartedLeading: () => note("start"),
    onStoppedLeading: () => note("stop"),
    now: () => Date.now(),
  });
  electors.push(e);
  return e;
}

const LEASE_MS = 1000;
const RETRY_MS = 40;
const RENEW_DEADLINE_MS = 300;

describe("LeaderElector loop", () => {
  // The loop runs on fake timers and a fake Date: time moves only when a test advances it.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  });
  afterEach(async () => {
    await Promise.all(electors.splice(0).map((e) => e.stop()));
    vi.useRealTimers();
  });

  it("one of two candidates leads; release hands over within the retry period, not the lease duration", async () => {
    const store = new MemoryLeases();
    const log = newLog();
    const a = elector(store, "a", log);
    const b = elector(store, "b", log);
    a.start();
    await advance(0);
    expect(a.isLeader()).toBe(true);
    b.start();
    await advance(150);
    expect(b.isLeader()).toBe(false);
    const t0 = Date.now();
    await a.stop();
    // b's next retry (at most RETRY_MS away) finds the released lease and takes it
    await advance(RETRY_MS);
    expect(b.isLeader()).toBe(true);
    expect(log.at.get("b start")! - t0).toBeLessThanOrEqual(RETRY_MS); // not LEASE_MS
    expect(log.events).toEqual(["a start", "a stop", "b start"]);
    expect(store.obj?.spec?.leaseTransitions).toBe(1);
  });

  it("a leader that cannot renew stops leading at the renew deadline, before the lease expires", async () => {
    const store = new MemoryLeases();
    const log = newLog();
    const a = elector(store, "a", log);
    a.start();
    await advance(0);
    expect(a.isLeader()).toBe(true);
    const renewedAt = log.at.get("a start")!; // the acquiring write was its last successful renew
    store.down = true;
    await advance(RENEW_DEADLINE_MS - 1);
    expect(a.isLeader()).toBe(true); // failed renews alone do not end leadership early
    await advance(1);
    expect(a.isLeader()).toBe(false);
    const took = log.at.get("a stop")! - renewedAt;
    expect(took).toBe(RENEW_DEADLINE_MS);
    expect(took).toBeLessThan(LEASE_MS); // nobody else could have taken the lease yet
    expect(log.events).toEqual(["a start", "a stop"]);
  });

  it("a leader whose lease was taken over steps down on its next renew", async () => {
    const store = new MemoryLeases();
    const log = newLog();
    const a = elector(store, "a", log);
    a.start();
    await advance(0);
    expect(a.isLeader()).toBe(true);
    // someone forcibly rewrites the lease
    store.obj = { ...store.obj!, spec: { ...store.obj!.spec, holderIdentity: "intruder" } };
    store.obj.metadata.resourceVersion = String(++store.rv);
    await advance(100); // the renew interval
    expect(a.isLeader()).toBe(false);
    expect(a.leader()).toBe("intruder");
  });
});
