// All FunctionCall writes of the engine. Writes to one call are serialised in-process (one
// lock per key), every response updates the graph at once (the older watch event is then
// ignored), and the operator, the only status writer, never re-reads what a write returned.
import { API_VERSION } from "../../../protocol/index.js";
import {
  type ObjectWriter,
  type WriteVerb,
  isAlreadyExists,
  isNotFound,
  isPermanent,
  refusalMessage,
} from "../kube/index.js";
import { type Call, nameOf, namespaceOf } from "./calls.js";
import type { CallGraph } from "./graph.js";

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
  writes = 0;

  constructor(
    private readonly writer: ObjectWriter,
    private readonly graph: CallGraph,
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
    this.writes++;
    try {
      // Top-level keys merge (null removes one); each value is written whole, nulls inside kept.
      const status: Record<string, unknown> = { ...(call.status ?? {}) };
      for (const [k, v] of Object.entries(patch)) {
        if (v === null || v === undefined) delete status[k];
        else status[k] = v;
      }
      const out = await this.writer.replaceStatus<Call>(ref(call), status);
      this.graph.observe(out);
      return out;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      return refusedOr(err, "update", `the status of ${describe(call)}`);
    }
  }

  /** Creates a call; an existing one with that name is returned from the graph (or undefined). */
  async create(obj: Call): Promise<{ call: Call | undefined; created: boolean }> {
    this.writes++;
    try {
      const out = await this.writer.create<Call>(obj);
      this.graph.observe(out);
      return { call: out, created: true };
    } catch (err) {
      if (isAlreadyExists(err)) return { call: this.graph.get(namespaceOf(obj), nameOf(obj)), created: false };
      return refusedOr(err, "create", describe(obj));
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
