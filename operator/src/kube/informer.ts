// An informer: a cache of one resource kept current by list + watch, that survives the ways a
// watch fails. The loop:
//   list (paged, consistent) → watch from the list's resourceVersion → on a clean end, watch
//   again from the last seen version → on 410 Gone or any error, relist after a backoff.
// Besides: a periodic full relist that reconciles the cache (emitting the differences), and a
// watchdog that restarts a watch that has been silent (no event, no bookmark) for too long,
// because a watch can stop delivering without ending.
import type { KubeClient } from "./client.js";
import { isGone } from "./errors.js";
import { kubeListWatch, type KubeListWatchOptions, type ListWatch, type RawWatchEvent } from "./listwatch.js";
import { type Logger, silentLogger } from "../../../protocol/index.js";
import { Store, compareResourceVersions, type Indexers, type StoreChange } from "./store.js";
import type { Informer, KubeObject, ObjectKey, WatchEventType } from "./types.js";

/** Defaults, documented here once. */
export const INFORMER_DEFAULTS = {
  /** Full relist that reconciles the cache with the server. */
  relistIntervalMs: 5 * 60_000,
  /**
   * A watch with no event and no bookmark for this long is restarted. kube-apiserver v1.34 sends
   * a bookmark on a quiet watch every 60 s (measured), so 60 s would race it; 90 s does not.
   */
  watchdogMs: 90_000,
  /** Backoff between failed list/watch attempts. */
  backoffInitialMs: 100,
  backoffMaxMs: 30_000,
  /** A watch that ends cleanly sooner than this without any event counts as a failure (backoff). */
  minHealthyWatchMs: 1_000,
} as const;

export interface InformerStats {
  lists: number;
  /** Lists after the first one (410, errors, periodic). */
  relists: number;
  periodicRelists: number;
  watchStarts: number;
  /** Watches that ended without error and were resumed. */
  watchRestarts: number;
  watchErrors: number;
  watchdogRestarts: number;
  gone: number;
  events: number;
  bookmarks: number;
  staleEvents: number;
  /** Own writes put into the cache by observe(). */
  observed: number;
  lastEventAt: number | undefined;
}

export interface InformerOptions<T extends KubeObject> {
  source: ListWatch<T>;
  name?: string;
  indexers?: Indexers<T>;
  relistIntervalMs?: number;
  watchdogMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  minHealthyWatchMs?: number;
  /** Applied to every object before it is cached (default: drop managedFields). */
  transform?: (obj: T) => T;
  log?: Logger;
}

type Handler<T> = (type: WatchEventType, obj: T, old: T | undefined) => void;
type WatchEnd = "closed" | "watchdog" | "relist" | "stopped" | "broken";

const dropManagedFields = <T extends KubeObject>(obj: T): T => {
  delete (obj.metadata as { managedFields?: unknown }).managedFields;
  return obj;
};

export class KubeInformer<T extends KubeObject> implements Informer<T> {
  readonly stats: InformerStats = {
    lists: 0,
    relists: 0,
    periodicRelists: 0,
    watchStarts: 0,
    watchRestarts: 0,
    watchErrors: 0,
    watchdogRestarts: 0,
    gone: 0,
    events: 0,
    bookmarks: 0,
    staleEvents: 0,
    observed: 0,
    lastEventAt: undefined,
  };
  private readonly store: Store<T>;
  private readonly handlers: Handler<T>[] = [];
  private readonly o: Required<Omit<InformerOptions<T>, "indexers">>;
  /** Highest resourceVersion processed: the cache reflects every change up to it. */
  private resourceVersion = "";
  /** Where the next watch starts (normally resourceVersion). */
  private watchFrom = "";
  /** Consecutive failed list/watch attempts (backoff); reset by any event received. */
  private failures = 0;
  private nextRelistAt = 0;
  private stopped = false;
  private running: Promise<void> | undefined;
  private readonly stopController = new AbortController();
  private watchController: AbortController | undefined;
  private endReason: WatchEnd | undefined;
  private firstSync: { resolve: () => void; promise: Promise<void> };

  constructor(opts: InformerOptions<T>) {
    this.o = {
      source: opts.source,
      name: opts.name ?? "informer",
      relistIntervalMs: opts.relistIntervalMs ?? INFORMER_DEFAULTS.relistIntervalMs,
      watchdogMs: opts.watchdogMs ?? INFORMER_DEFAULTS.watchdogMs,
      backoffInitialMs: opts.backoffInitialMs ?? INFORMER_DEFAULTS.backoffInitialMs,
      backoffMaxMs: opts.backoffMaxMs ?? INFORMER_DEFAULTS.backoffMaxMs,
      minHealthyWatchMs: opts.minHealthyWatchMs ?? INFORMER_DEFAULTS.minHealthyWatchMs,
      transform: opts.transform ?? dropManagedFields,
      log: opts.log ?? silentLogger,
    };
    for (const k of ["relistIntervalMs", "watchdogMs", "backoffInitialMs", "backoffMaxMs"] as const) {
      if (!(this.o[k] > 0)) throw new Error(`informer ${this.o.name} ${k}: must be > 0`);
    }
    this.store = new Store<T>(opts.indexers ?? {});
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.firstSync = { resolve, promise };
  }

  get(key: ObjectKey): T | undefined {
    return this.store.get(key);
  }
  list(namespace?: string): T[] {
    return this.store.list(namespace);
  }
  byIndex(indexName: string, value: string): T[] {
    return this.store.byIndex(indexName, value);
  }
  synced(): boolean {
    return this.store.synced();
  }
  size(): number {
    return this.store.size();
  }
  /** The last resourceVersion the informer has seen (list, event or bookmark). */
  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  /**
   * Puts an object this process just wrote (the API server's answer) into the cache at once, so
   * that readers and handlers need not wait for the watch to echo it; the echo is then a duplicate
   * and is dropped. Only this object's entry moves (never the informer's own version), so events
   * of other objects still in flight are unaffected. Returns false if the cache already holds
   * this version or a newer one.
   */
  observe(obj: T): boolean {
    if (!this.store.synced()) return false; // before the first list the cache is not authoritative
    const change = this.store.apply("MODIFIED", this.o.transform(obj));
    if (!change) return false;
    this.stats.observed++;
    this.notify([change]);
    return true;
  }

  onEvent(handler: Handler<T>): void {
    this.handlers.push(handler);
  }

  /** Starts the loop; resolves once the first list is in the cache. */
  start(): Promise<void> {
    if (!this.running) this.running = this.loop();
    return this.firstSync.promise;
  }

  /** Ends the watch and the loop (aborting requests in flight); resolves when the loop is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.endWatch("stopped");
    this.stopController.abort();
    this.firstSync.resolve(); // nobody waits forever on a stopped informer; check synced()
    await this.running;
  }

  /**
   * Drops the current watch as a network failure would. With `resumeFrom`, the next watch starts
   * from that resourceVersion (an old one provokes 410 Gone). For tests and operations.
   */
  breakWatch(resumeFrom?: string): void {
    if (resumeFrom !== undefined) this.watchFrom = resumeFrom;
    this.endWatch("broken");
  }

  private endWatch(reason: WatchEnd): void {
    if (!this.watchController) return;
    this.endReason ??= reason;
    this.watchController.abort();
  }

  private async loop(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        const started = performance.now();
        const eventsBefore = this.stats.events + this.stats.bookmarks;
        const end = await this.watchOnce();
        if (end === "stopped") break;
        if (end === "relist") {
          needList = true;
          continue;
        }
        if (end === "watchdog") {
          this.stats.watchdogRestarts++;
          this.o.log.warn("watch silent too long, restarting it", { informer: this.o.name, ms: this.o.watchdogMs });
        } else {
          this.stats.watchRestarts++;
        }
        const quiet = this.stats.events + this.stats.bookmarks === eventsBefore;
        if (end === "closed" && quiet && performance.now() - started < this.o.minHealthyWatchMs) {
          this.failures++; // the server keeps closing at once: do not spin
          await this.sleep(this.backoff(this.failures));
        }
      } catch (e) {
        if (this.stopped) break;
        needList = true;
        this.failures++;
        if (isGone(e)) {
          this.stats.gone++;
          this.o.log.info("resourceVersion too old, relisting", { informer: this.o.name });
          if (this.failures === 1) continue; // 410 is routine: relist at once the first time
        } else {
          this.stats.watchErrors++;
          this.o.log.warn("list/watch failed, relisting after backoff", {
            informer: this.o.name,
            err: e,
            failures: this.failures,
          });
        }
        await this.sleep(this.backoff(this.failures));
      }
    }
  }

  private backoff(failures: number): number {
    const d = Math.min(this.o.backoffMaxMs, this.o.backoffInitialMs * 2 ** Math.max(0, failures - 1));
    return d / 2 + Math.random() * (d / 2); // jitter: many informers must not relist in step
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped) return resolve();
      const t = setTimeout(done, ms);
      const signal = this.stopController.signal;
      function done() {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done);
    });
  }

  private async relist(): Promise<void> {
    const first = this.stats.lists === 0;
    const res = await this.o.source.list(this.stopController.signal, this.o.transform);
    this.stats.lists++;
    if (!first) this.stats.relists++;
    const items = res.items;
    const changes = this.store.replace(items, res.resourceVersion);
    this.resourceVersion = res.resourceVersion;
    this.watchFrom = res.resourceVersion;
    this.nextRelistAt = performance.now() + this.o.relistIntervalMs;
    if (!first && changes.length) {
      this.o.log.info("relist reconciled the cache", { informer: this.o.name, changes: changes.length });
    }
    this.notify(changes);
    if (first) this.firstSync.resolve();
  }

  private async watchOnce(): Promise<WatchEnd> {
    const ac = new AbortController();
    this.watchController = ac;
    this.endReason = undefined;
    let watchdog: NodeJS.Timeout | undefined;
    const arm = () => {
      if (watchdog) watchdog.refresh();
      else watchdog = setTimeout(() => this.endWatch("watchdog"), this.o.watchdogMs);
    };
    const relistTimer = setTimeout(
      () => {
        this.stats.periodicRelists++;
        this.endWatch("relist");
      },
      Math.max(0, this.nextRelistAt - performance.now()),
    );
    this.stats.watchStarts++;
    arm();
    try {
      await this.o.source.watch(this.watchFrom, ac.signal, (ev) => {
        arm();
        this.handle(ev);
      });
      return this.endReason ?? "closed";
    } catch (e) {
      if (this.endReason) return this.endReason; // our own abort
      throw e;
    } finally {
      clearTimeout(watchdog);
      clearTimeout(relistTimer);
      this.watchController = undefined;
    }
  }

  private handle(ev: RawWatchEvent<T>): void {
    this.stats.lastEventAt = Date.now();
    if (ev.type !== "ERROR") this.failures = 0; // the stream works: the next failure starts a fresh backoff
    switch (ev.type) {
      case "BOOKMARK":
        this.stats.bookmarks++;
        this.advance(ev.object.metadata.resourceVersion);
        return;
      case "ERROR": {
        const s = ev.object;
        const err = Object.assign(new Error(`watch ${this.o.name}: ${s.message ?? "error event"}`), {
          statusCode: s.code,
          reason: s.reason,
        });
        throw err;
      }
      default: {
        this.stats.events++;
        const obj = this.o.transform(ev.object);
        const rv = obj.metadata.resourceVersion;
        // Events arrive in version order: one at or below what the cache already reflects is a
        // replay (a watch resumed from an older version) and would resurrect deleted objects.
        const c = compareResourceVersions(rv, this.resourceVersion);
        if (c !== undefined && c <= 0) {
          this.stats.staleEvents++;
          return;
        }
        this.advance(rv);
        const change = this.store.apply(ev.type, obj);
        if (change) this.notify([change]);
        else this.stats.staleEvents++;
      }
    }
  }

  private advance(rv: string | undefined): void {
    if (!rv) return;
    const c = compareResourceVersions(rv, this.resourceVersion);
    if (c === undefined || c > 0) this.resourceVersion = rv;
    this.watchFrom = this.resourceVersion;
  }

  private notify(changes: StoreChange<T>[]): void {
    for (const ch of changes) {
      for (const h of this.handlers) {
        try {
          h(ch.type, ch.obj, ch.old);
        } catch (e) {
          this.o.log.error("informer handler threw", { informer: this.o.name, err: e });
        }
      }
    }
  }
}

/** An informer for one kind (optionally one namespace and label selector) on a real server. */
export function createInformer<T extends KubeObject>(
  client: KubeClient,
  opts: KubeListWatchOptions & Omit<InformerOptions<T>, "source">,
): KubeInformer<T> {
  const { apiVersion, kind, namespace, labelSelector, fieldSelector, pageSize, watchTimeoutSeconds, ...informerOpts } =
    opts;
  const source = kubeListWatch<T>(client, {
    apiVersion,
    kind,
    namespace,
    labelSelector,
    fieldSelector,
    pageSize,
    watchTimeoutSeconds,
  });
  return new KubeInformer<T>({
    name: `${kind}${namespace ? `/${namespace}` : ""}${labelSelector ? `[${labelSelector}]` : ""}`,
    ...informerOpts,
    source,
  });
}
