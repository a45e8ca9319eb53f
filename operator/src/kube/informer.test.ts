// The informer loop driven by a scripted ListWatch: each test decides what the "server" lists
// and streams, and checks what the informer does about it.
import { afterEach, describe, expect, it } from "vitest";
import { KubeInformer } from "./informer.js";
import type { ListResult, ListWatch, RawWatchEvent } from "./listwatch.js";
import type { KubeObject, WatchEventType } from "./types.js";

const cm = (name: string, rv: string, app = "a"): KubeObject => ({
  metadata: { namespace: "ns", name, resourceVersion: rv, labels: { app } },
});

interface Session {
  rv: string;
  signal: AbortSignal;
  emit(e: RawWatchEvent<KubeObject>): void;
  end(): void;
  fail(e: unknown): void;
}

class Scripted implements ListWatch<KubeObject> {
  lists: ListResult<KubeObject>[] = [];
  listCalls = 0;
  sessions: Session[] = [];
  current: ListResult<KubeObject> = { items: [], resourceVersion: "1" };

  async list(_signal: AbortSignal, each = (o: KubeObject) => o): Promise<ListResult<KubeObject>> {
    this.listCalls++;
    const next = this.lists.shift() ?? this.current;
    this.current = next;
    return { items: next.items.map((o) => each(structuredClone(o))), resourceVersion: next.resourceVersion };
  }

  watch(rv: string, signal: AbortSignal, onEvent: (e: RawWatchEvent<KubeObject>) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      signal.addEventListener("abort", () => reject(new Error("aborted")));
      // Like the real source: a throwing handler (an ERROR event) ends the stream with that error.
      const emit = (e: RawWatchEvent<KubeObject>) => {
        try {
          onEvent(e);
        } catch (err) {
          reject(err);
        }
      };
      this.sessions.push({ rv, signal, emit, end: resolve, fail: reject });
    });
  }
}

async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 2));
  }
}

const informers: KubeInformer<KubeObject>[] = [];
function make(src: Scripted, opts: Partial<ConstructorParameters<typeof KubeInformer>[0]> = {}) {
  const inf = new KubeInformer<KubeObject>({
    source: src,
    backoffInitialMs: 5,
    backoffMaxMs: 20,
    indexers: { app: (o) => [o.metadata.labels?.app ?? ""] },
    ...opts,
  });
  const seen: string[] = [];
  inf.onEvent((t: WatchEventType, o) => seen.push(`${t} ${o.metadata.name}@${o.metadata.resourceVersion}`));
  informers.push(inf);
  return { inf, seen };
}

afterEach(async () => {
  await Promise.all(informers.splice(0).map((i) => i.stop()));
});

describe("KubeInformer loop", () => {
  it("lists, then watches from the list's resourceVersion; handlers see the updated cache", async () => {
    const src = new Scripted();
    src.lists.push({ items: [cm("x", "5")], resourceVersion: "7" });
    const { inf, seen } = make(src);
    const inHandler: (string | undefined)[] = [];
    inf.onEvent((_t, o) => inHandler.push(inf.get(`ns/${o.metadata.name}`)?.metadata.resourceVersion));
    await inf.start();
    expect(inf.synced()).toBe(true);
    await until(() => src.sessions.length === 1);
    expect(src.sessions[0]!.rv).toBe("7");
    src.sessions[0]!.emit({ type: "MODIFIED", object: cm("x", "8", "b") });
    src.sessions[0]!.emit({ type: "ADDED", object: cm("y", "9") });
    src.sessions[0]!.emit({ type: "MODIFIED", object: cm("y", "9") }); // duplicate: ignored
    expect(seen).toEqual(["ADDED x@5", "MODIFIED x@8", "ADDED y@9"]);
    expect(inHandler).toEqual(["5", "8", "9"]);
    expect(inf.byIndex("app", "b").map((o) => o.metadata.name)).toEqual(["x"]);
    expect(inf.stats.staleEvents).toBe(1);
  });

  it("resumes a watch that ended cleanly from the last version seen, without relisting", async () => {
    const src = new Scripted();
    const { inf } = make(src, { minHealthyWatchMs: 0 });
    await inf.start();
    await until(() => src.sessions.length === 1);
    src.sessions[0]!.emit({ type: "ADDED", object: cm("x", "3") });
    src.sessions[0]!.emit({ type: "BOOKMARK", object: { metadata: { resourceVersion: "12" } } });
    src.sessions[0]!.end();
    await until(() => src.sessions.length === 2);
    expect(src.sessions[1]!.rv).toBe("12");
    expect(src.listCalls).toBe(1);
    expect(inf.stats.watchRestarts).toBe(1);
    expect(inf.stats.bookmarks).toBe(1);
  });

  it("ignores a replay from an older version: deleted objects are not resurrected", async () => {
    const src = new Scripted();
    src.lists.push({ items: [], resourceVersion: "10" });
    const { inf, seen } = make(src, { minHealthyWatchMs: 0 });
    await inf.start();
    await until(() => src.sessions.length === 1);
    src.sessions[0]!.emit({ type: "ADDED", object: cm("x", "11") });
    src.sessions[0]!.emit({ type: "DELETED", object: cm("x", "12") });
    inf.breakWatch("10");
    await until(() => src.sessions.length === 2);
    expect(src.sessions[1]!.rv).toBe("10");
    src.sessions[1]!.emit({ type: "ADDED", object: cm("x", "11") });
    src.sessions[1]!.emit({ type: "DELETED", object: cm("x", "12") });
    src.sessions[1]!.emit({ type: "ADDED", object: cm("y", "13") });
    expect(seen).toEqual(["ADDED x@11", "DELETED x@12", "ADDED y@13"]);
    expect(inf.stats.staleEvents).toBe(2);
  });

  it("observe() puts own writes in the cache at once; their echo is dropped, other events are not", async () => {
    const src = new Scripted();
    src.lists.push({ items: [cm("x", "5"), cm("y", "6")], resourceVersion: "10" });
    const { inf, seen } = make(src);
    await inf.start();
    await until(() => src.sessions.length === 1);
    expect(inf.observe(cm("x", "15", "b"))).toBe(true);
    expect(inf.get("ns/x")?.metadata.resourceVersion).toBe("15");
    expect(inf.byIndex("app", "b").length).toBe(1);
    expect(inf.observe(cm("x", "15", "b"))).toBe(false);
    src.sessions[0]!.emit({ type: "MODIFIED", object: cm("y", "12") }); // older than 15, other object: applied
    src.sessions[0]!.emit({ type: "MODIFIED", object: cm("x", "15", "b") }); // the echo: dropped
    src.sessions[0]!.emit({ type: "MODIFIED", object: cm("x", "16", "c") });
    expect(seen.slice(2)).toEqual(["MODIFIED x@15", "MODIFIED y@12", "MODIFIED x@16"]);
    expect(inf.stats.observed).toBe(1);
  });

  it("relists on 410 Gone and emits what changed meanwhile", async () => {
    const src = new Scripted();
    src.lists.push({ items: [cm("x", "2"), cm("y", "3")], resourceVersion: "3" });
    src.lists.push({ items: [cm("y", "30"), cm("z", "31")], resourceVersion: "40" });
    const { inf, seen } = make(src);
    await inf.start();
    await until(() => src.sessions.length === 1);
    src.sessions[0]!.emit({
      type: "ERROR",
      object: { code: 410, reason: "Expired", message: "too old resource version" },
    });
    await until(() => src.sessions.length === 2);
    expect(src.sessions[1]!.rv).toBe("40");
    expect(inf.stats.gone).toBe(1);
    expect(inf.stats.relists).toBe(1);
    expect(seen.slice(2).sort()).toEqual(["ADDED z@31", "DELETED x@2", "MODIFIED y@30"]);
    expect(inf.list().length).toBe(2);
  });

  it("relists after a watch error, with backoff", async () => {
    const src = new Scripted();
    const { inf } = make(src);
    await inf.start();
    await until(() => src.sessions.length === 1);
    src.sessions[0]!.fail(new Error("ECONNRESET"));
    await until(() => src.sessions.length === 2);
    expect(src.listCalls).toBe(2);
    expect(inf.stats.watchErrors).toBe(1);
  });

  it("keeps retrying a failing list and syncs when it works", async () => {
    const src = new Scripted();
    let fails = 3;
    const list = src.list.bind(src);
    src.list = async (signal, each) => {
      if (fails-- > 0) throw new Error("connection refused");
      return list(signal, each);
    };
    const { inf } = make(src);
    await inf.start();
    expect(inf.synced()).toBe(true);
    expect(inf.stats.watchErrors).toBe(3);
  });

  it("restarts a silent watch (watchdog)", async () => {
    const src = new Scripted();
    const { inf } = make(src, { watchdogMs: 30 });
    await inf.start();
    await until(() => src.sessions.length >= 2);
    expect(src.sessions[0]!.signal.aborted).toBe(true);
    expect(inf.stats.watchdogRestarts).toBeGreaterThanOrEqual(1);
    expect(src.listCalls).toBe(1);
  });

  it("events keep the watchdog quiet", async () => {
    const src = new Scripted();
    const { inf } = make(src, { watchdogMs: 60 });
    await inf.start();
    await until(() => src.sessions.length === 1);
    for (let i = 0; i < 10; i++) {
      src.sessions[0]!.emit({ type: "BOOKMARK", object: { metadata: { resourceVersion: String(10 + i) } } });
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(inf.stats.watchdogRestarts).toBe(0);
  });

  it("relists periodically and reconciles the cache", async () => {
    const src = new Scripted();
    src.lists.push({ items: [cm("x", "1")], resourceVersion: "1" });
    src.lists.push({ items: [], resourceVersion: "5" });
    const { inf, seen } = make(src, { relistIntervalMs: 40 });
    await inf.start();
    await until(() => inf.stats.periodicRelists >= 1 && src.listCalls >= 2);
    await until(() => seen.includes("DELETED x@1"));
    expect(inf.get("ns/x")).toBeUndefined();
  });

  it("stop aborts the watch and ends the loop", async () => {
    const src = new Scripted();
    const { inf } = make(src);
    await inf.start();
    await until(() => src.sessions.length === 1);
    await inf.stop();
    expect(src.sessions[0]!.signal.aborted).toBe(true);
    expect(src.sessions.length).toBe(1);
  });

  it("a handler that throws does not break the informer", async () => {
    const src = new Scripted();
    const { inf, seen } = make(src);
    inf.onEvent(() => {
      throw new Error("handler bug");
    });
    await inf.start();
    await until(() => src.sessions.length === 1);
    src.sessions[0]!.emit({ type: "ADDED", object: cm("x", "4") });
    expect(seen).toEqual(["ADDED x@4"]);
    expect(inf.get("ns/x")).toBeDefined();
  });
});
