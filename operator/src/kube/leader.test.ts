import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { KubeApiError } from "./errors.js";
import { isFenced } from "./fence.js";
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

/**
 * MemoryLeases whose next replace answers as scripted: "slow" commits now and answers `slowMs`
 * later, "hold" commits now and answers on release(), "lost" commits and fails (the answer lost),
 * "503" fails without committing.
 */
class ScriptedLeases extends MemoryLeases {
  script: ("slow" | "hold" | "lost" | "503")[] = [];
  slowMs = 0;
  replaces = 0;
  private held: (() => void)[] = [];
  override async replace<T extends KubeObject>(o: T): Promise<T> {
    this.replaces++;
    const how = this.script.shift();
    if (how === "503") throw new KubeApiError(503, "ServiceUnavailable", "etcd leader changed", "PUT", "/");
    const out = await super.replace(o);
    if (how === "lost") throw new Error("socket hang up");
    if (how === "slow") await new Promise((r) => setTimeout(r, this.slowMs));
    if (how === "hold") await new Promise<void>((r) => this.held.push(r));
    return out;
  }
  release() {
    for (const r of this.held.splice(0)) r();
  }
}

const electors: LeaderElector[] = [];

/** Moves the fake clock by `ms`, firing the timers due on the way, with promise callbacks settled. */
const advance = (ms: number) => vi.advanceTimersByTimeAsync(ms);

/** Fake-clock time of each callback, as "identity start"/"identity stop" → ms. */
type Log = { events: string[]; at: Map<string, number> };
const newLog = (): Log => ({ events: [], at: new Map() });

function elector(writer: LeaseWriter, identity: string, log: Log, now: () => number = () => Date.now()) {
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
    now,
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

describe("LeaderElector renew deadline, late answers and fence", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  });
  afterEach(async () => {
    await Promise.all(electors.splice(0).map((e) => e.stop()));
    vi.useRealTimers();
  });

  /** `a` leading from t0 = its acquire's send time. */
  async function leading(store: MemoryLeases, log: Log, now?: () => number) {
    const a = elector(store, "a", log, now);
    const t0 = Date.now();
    a.start();
    await advance(0);
    expect(a.isLeader()).toBe(true);
    return { a, t0 };
  }

  it("counts the deadline from when a slow renew was sent, not from its answer", async () => {
    const store = new ScriptedLeases();
    const log = newLog();
    const { a, t0 } = await leading(store, log);
    store.script.push("slow");
    store.slowMs = 150;
    await advance(100 + 150); // renew sent at t0+100, answered at t0+250
    expect(a.isLeader()).toBe(true);
    store.down = true; // no renew succeeds any more
    await advance(100 + RENEW_DEADLINE_MS - 250 - 1);
    expect(a.isLeader()).toBe(true);
    await advance(1);
    expect(a.isLeader()).toBe(false);
    expect(log.at.get("a stop")! - t0).toBe(100 + RENEW_DEADLINE_MS); // not 250 + RENEW_DEADLINE_MS
  });

  it("a renew answered after the step-down does not make it lead; leading again takes a fresh write", async () => {
    const store = new ScriptedLeases();
    const log = newLog();
    const { a, t0 } = await leading(store, log);
    store.script.push("hold");
    await advance(RENEW_DEADLINE_MS); // the renew sent at t0+100 commits but its answer is held
    expect(a.isLeader()).toBe(false);
    expect(log.events).toEqual(["a start", "a stop"]);
    expect(store.obj?.spec?.holderIdentity).toBe("a"); // the server did take the renew
    const writesBefore = store.rv;
    store.release();
    await advance(0);
    expect(a.isLeader()).toBe(false);
    expect(() => a.fence("create Pod ns/p")).toThrow(/stepped down/);
    expect(log.events).toEqual(["a start", "a stop"]);
    // the next round reads the Lease, finds itself the holder and renews it: a new term
    await advance(RETRY_MS);
    expect(a.isLeader()).toBe(true);
    expect(store.rv).toBe(writesBefore + 1);
    expect(log.at.get("a start")! - t0).toBe(RENEW_DEADLINE_MS + RETRY_MS);
  });

  it("a renew held until another replica took over does not make the old leader lead", async () => {
    const store = new ScriptedLeases();
    const log = newLog();
    const { a } = await leading(store, log);
    const b = elector(new MemoryLeasesView(store), "b", log);
    b.start();
    await advance(0);
    store.script.push("hold");
    await advance(LEASE_MS + 2 * RENEW_DEADLINE_MS); // b waits out the lease a's held renew wrote
    expect(b.isLeader()).toBe(true);
    store.release();
    await advance(RETRY_MS * 3);
    expect(a.isLeader()).toBe(false);
    expect(a.leader()).toBe("b");
    expect(log.events).toEqual(["a start", "a stop", "b start"]);
    expect(() => a.fence("patch FunctionCall/status ns/c")).toThrow(/FunctionCall\/status ns\/c: refused/);
    expect(() => b.fence("patch FunctionCall/status ns/c")).not.toThrow();
  });

  it("an answer lost after commit costs nothing: the next round finds itself the holder and renews", async () => {
    const store = new ScriptedLeases();
    const log = newLog();
    const { a } = await leading(store, log);
    store.script.push("lost");
    await advance(100); // renew committed, answer lost
    expect(store.replaces).toBe(1);
    await advance(RETRY_MS); // stale renew → 409 → read → renew
    expect(store.replaces).toBe(3);
    await advance(RENEW_DEADLINE_MS * 2);
    expect(a.isLeader()).toBe(true);
    expect(log.events).toEqual(["a start"]);
  });

  it("5xx answers are retried; it leads on if a renew succeeds within the deadline, else steps down", async () => {
    const store = new ScriptedLeases();
    const log = newLog();
    const { a, t0 } = await leading(store, log);
    store.script.push("503", "503");
    await advance(100 + 2 * RETRY_MS); // two failed renews, then one succeeds at t0+180
    expect(a.isLeader()).toBe(true);
    store.script.push(...Array<"503">(20).fill("503"));
    await advance(180 + RENEW_DEADLINE_MS - 100 - 2 * RETRY_MS - 1);
    expect(a.isLeader()).toBe(true);
    await advance(1);
    expect(a.isLeader()).toBe(false);
    expect(log.at.get("a stop")! - t0).toBe(180 + RENEW_DEADLINE_MS);
  });

  it("the fence closes at the deadline on the clock, even before the step-down timer has run", async () => {
    const store = new ScriptedLeases();
    const log = newLog();
    let skew = 0; // a clock that moves without firing timers, as in a stalled event loop
    const b = elector(store, "b", log, () => Date.now() + skew);
    expect(() => b.fence("create Pod ns/p")).toThrow(/not led/);
    b.start();
    await advance(0);
    expect(b.isLeader()).toBe(true);
    expect(() => b.fence("create Pod ns/p")).not.toThrow();
    skew = RENEW_DEADLINE_MS;
    const err = (() => {
      try {
        b.fence("create Pod ns/p");
      } catch (e) {
        return e;
      }
    })();
    expect(isFenced(err)).toBe(true);
    expect(String(err)).toMatch(/covers writes only until/);
  });
});

/** A second view of the same in-memory Lease (another replica's client). */
class MemoryLeasesView implements LeaseWriter {
  constructor(private readonly s: MemoryLeases) {}
  get<T extends KubeObject>(): Promise<T> {
    return MemoryLeases.prototype.get.call(this.s) as Promise<T>;
  }
  create<T extends KubeObject>(o: T): Promise<T> {
    return MemoryLeases.prototype.create.call(this.s, o) as Promise<T>;
  }
  replace<T extends KubeObject>(o: T): Promise<T> {
    return MemoryLeases.prototype.replace.call(this.s, o) as Promise<T>;
  }
}
