// All FunctionCall writes of the engine. Writes to one call are serialised in-process (one
// lock per key), every response updates the graph at once (the older watch event is then
// ignored), and the operator, the only status writer, never re-reads what a write returned.
import { API_VERSION, type FunctionCallStatus, LABEL, shardStatusWith } from "../../../protocol/index.js";
import {
  type ObjectWriter,
  type WriteVerb,
  isAlreadyExists,
  isNotFound,
  isPermanent,
  refusalMessage,
} from "../kube/index.js";
import { type Call, keyOfCall, nameOf, namespaceOf } from "./calls.js";
import type { CallGraph, ItemRef } from "./graph.js";
import { WriteLanes } from "./write-lanes.js";

const NOT_KEPT_FOR_ITEMS: ReadonlySet<string> = new Set(["progress", "conditions", "observedGeneration"]);

/** Item status writes waiting for their shard's next status write. */
interface ShardCommit {
  pending: Map<number, FunctionCallStatus>;
  waiters: { key: string; resolve: (c: Call | undefined) => void; reject: (e: unknown) => void }[];
  inFlight: boolean;
  timer: NodeJS.Timeout | undefined;
}

const ref = (c: Call) => ({
  apiVersion: API_VERSION,
  kind: "FunctionCall",
  namespace: namespaceOf(c),
  name: nameOf(c),
});

/**
 * The API server refused a write for good (kube isPermanent): retrying it cannot help. The message
 * names the object and the server's rule; the engine fails the call that needed the write.
 */
export class WriteRefused extends Error {
  override readonly name = "WriteRefused";
}

/** Rethrows `err`, as WriteRefused when it is permanent. */
function refusedOr(err: unknown, verb: WriteVerb, object: string): never {
  if (isPermanent(err, verb)) throw new WriteRefused(refusalMessage(err, verb, object));
  throw err;
}

const describe = (c: Call) => `FunctionCall ${namespaceOf(c)}/${nameOf(c)}`;

export class CallStore {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly commits = new Map<string, ShardCommit>();
  writes = 0;
  /** Status writes of shards, and the item changes they carried. */
  shardWrites = 0;
  itemChanges = 0;

  constructor(
    private readonly writer: ObjectWriter,
    private readonly graph: CallGraph,
    /** How long a shard's item changes gather before their one status write (group commit). */
    private readonly shardCommitMs = 0,
    /** Status writes go first; large expansions' creates yield to them (see write-lanes.ts). */
    readonly lanes: WriteLanes = new WriteLanes(),
  ) {}

  /** Runs `fn` after every earlier holder of `key` finished. */
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }

  /** Updates status (see below); undefined when the call is gone. Call with the key's lock held. */
  async patchStatus(call: Call, patch: Record<string, unknown>): Promise<Call | undefined> {
    // Top-level keys merge (null removes one); each value is written whole, nulls inside kept.
    const status: Record<string, unknown> = { ...(call.status ?? {}) };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null || v === undefined) delete status[k];
      else status[k] = v;
    }
    const item = this.graph.itemRef(keyOfCall(call));
    if (item) {
      // An item keeps no progress or conditions (a shard holds hundreds): nothing to write.
      if (Object.keys(patch).every((k) => NOT_KEPT_FOR_ITEMS.has(k))) return call;
      return this.commitItem(keyOfCall(call), item, status as FunctionCallStatus);
    }
    this.writes++;
    try {
      const out = await this.lanes.status(() => this.writer.replaceStatus<Call>(ref(call), status));
      this.graph.observe(withoutManagedFields(out));
      return out;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      return refusedOr(err, "update", `the status of ${describe(call)}`);
    }
  }

  /**
   * A map item's status: written with every other change of its shard gathered meanwhile, in one
   * status write of the shard; resolves (the item as written, or undefined when its shard is gone)
   * once that write is persisted, so an assignment is durable before the pod hears of it.
   */
  private commitItem(key: string, ref: ItemRef, status: FunctionCallStatus): Promise<Call | undefined> {
    let c = this.commits.get(ref.shard);
    if (!c) this.commits.set(ref.shard, (c = { pending: new Map(), waiters: [], inFlight: false, timer: undefined }));
    c.pending.set(ref.index, status);
    const commit = c;
    const done = new Promise<Call | undefined>((resolve, reject) => commit.waiters.push({ key, resolve, reject }));
    this.schedule(ref.shard, c);
    return done;
  }

  private schedule(shardKey: string, c: ShardCommit): void {
    if (c.inFlight || c.timer || c.pending.size === 0) return;
    c.timer = setTimeout(() => {
      c.timer = undefined;
      void this.flush(shardKey, c);
    }, this.shardCommitMs);
  }

  private async flush(shardKey: string, c: ShardCommit): Promise<void> {
    const shard = this.graph.getKey(shardKey);
    const pending = c.pending;
    const waiters = c.waiters;
    c.pending = new Map();
    c.waiters = [];
    if (!shard) {
      for (const w of waiters) w.resolve(undefined);
      if (c.pending.size === 0) this.commits.delete(shardKey);
      return;
    }
    c.inFlight = true;
    this.writes++;
    this.shardWrites++;
    this.itemChanges += pending.size;
    try {
      const status = shardStatusWith(shard, pending, Date.now());
      let out: Call | undefined;
      try {
        out = await this.lanes.status(() =>
          this.writer.replaceStatus<Call>(ref(shard), status as Record<string, unknown>),
        );
        this.graph.observe(withoutManagedFields(out));
      } catch (err) {
        if (!isNotFound(err)) refusedOr(err, "update", `the status of ${describe(shard)}`);
      }
      for (const w of waiters) w.resolve(out && this.graph.getKey(w.key));
    } catch (err) {
      for (const w of waiters) w.reject(err);
    } finally {
      c.inFlight = false;
      if (c.pending.size > 0) this.schedule(shardKey, c);
      else this.commits.delete(shardKey);
    }
  }

  /** Creates a call; an existing one with that name is returned from the graph (or undefined). */
  async create(obj: Call): Promise<{ call: Call | undefined; created: boolean }> {
    this.writes++;
    try {
      const out = await this.writer.create<Call>(obj);
      this.graph.observe(withoutManagedFields(out));
      return { call: out, created: true };
    } catch (err) {
      if (isAlreadyExists(err)) return { call: this.graph.get(namespaceOf(obj), nameOf(obj)), created: false };
      return refusedOr(err, "create", describe(obj));
    }
  }

  /**
   * Labels a Delegated link nothing reads settled and drops it from the graph at once (the watch,
   * which selects unsettled calls, then reports it deleted). In the bulk lane: nothing waits on it.
   * A refusal or a call already gone leaves nothing to do (an unsettled link costs memory, never a
   * wrong answer); a transient error is thrown for the reconcile's retry. Call with its lock held.
   * True when this write settled it.
   */
  async settle(call: Call): Promise<boolean> {
    this.writes++;
    try {
      const labels = { [LABEL.settled]: "true" };
      const out = await this.lanes.bulk(() => this.writer.patchMeta<Call>(ref(call), { labels }));
      this.graph.remove(withoutManagedFields(out));
      return true;
    } catch (err) {
      if (isNotFound(err) || isPermanent(err, "patch")) return false;
      throw err;
    }
  }

  async delete(call: Call): Promise<void> {
    try {
      await this.writer.delete(ref(call), { propagation: "Background" });
    } catch (err) {
      if (!isNotFound(err)) refusedOr(err, "delete", describe(call));
    }
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; rejects with the first error. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** As the informer caches objects: a write's answer carries managedFields the engine never reads. */
function withoutManagedFields(c: Call): Call {
  delete (c.metadata as { managedFields?: unknown }).managedFields;
  return c;
}
