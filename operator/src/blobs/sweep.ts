// The orphan sweep: blobs are filed under "<namespace>/<request>/", and a request's blobs are
// deleted when the graph sees its root call go. A request deleted while no operator was leading
// (or a failed delete) leaves its prefix behind; this finds such prefixes and removes them.
//
// A prefix is removed only after it has been seen without its request for `graceMs`: an upload
// (a File input) lands in the store before the request's FunctionCall is created. Each pass looks
// at no more than `maxPerPass` prefixes and resumes where the previous pass stopped.
import type { BlobStore } from "./blobstore.js";
import { requestPrefix } from "./refs.js";

const FORGET_AFTER_MS = 24 * 3600 * 1000;

export interface SweepCursor {
  namespace: string;
  /** Lists the namespaces after this one (undefined: it is the last). */
  namespaceToken?: string;
  /** Lists this namespace's requests after those already looked at. */
  requestToken?: string;
}

export interface SweepState {
  /** "<namespace>/<request>" → when it was first seen orphaned. */
  orphanSince: Map<string, number>;
  /** Where the next pass goes on: a namespace part-way through. */
  cursor?: SweepCursor;
}

export interface SweepDecision {
  remove: string[];
  /** Prefixes seen orphaned for the first time (or still within the grace). */
  waiting: number;
}

/**
 * Pure: given the prefixes a pass looked at and which of them still have a request, which to
 * remove now, updating `state.orphanSince` (a prefix whose request exists is forgotten).
 */
export function decideSweep(
  seen: readonly string[],
  exists: (prefix: string) => boolean,
  state: SweepState,
  now: number,
  graceMs: number,
): SweepDecision {
  const remove: string[] = [];
  let waiting = 0;
  for (const p of seen) {
    if (exists(p)) {
      state.orphanSince.delete(p);
      continue;
    }
    const since = state.orphanSince.get(p) ?? now;
    if (now - since >= graceMs) {
      remove.push(p);
      state.orphanSince.delete(p);
    } else {
      state.orphanSince.set(p, since);
      waiting++;
    }
  }
  return { remove, waiting };
}

export interface SweepHooks {
  pass?(result: { examined: number; removed: number; waiting: number; errors: number }): void;
}

export interface SweeperOptions {
  store: BlobStore;
  /** Whether the request (its root FunctionCall) exists, from the operator's cache. */
  requestExists(namespace: string, request: string): boolean;
  intervalMs: number;
  graceMs: number;
  maxPerPass: number;
  hooks?: SweepHooks;
  log?: {
    warn(msg: string, fields?: Record<string, unknown>): void;
    info(msg: string, fields?: Record<string, unknown>): void;
  };
  now?: () => number;
}

export class BlobSweeper {
  readonly state: SweepState = { orphanSince: new Map() };
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  /** Lists the namespaces after the last one finished (undefined: from the first). */
  private nsToken?: string;

  constructor(private readonly o: SweeperOptions) {}

  start(): void {
    const tick = () => {
      this.running = this.pass()
        .then(() => undefined)
        .catch((err: unknown) => this.o.log?.warn("blob sweep pass failed", { err }))
        .finally(() => {
          this.running = undefined;
          if (this.timer) this.timer = setTimeout(tick, this.o.intervalMs).unref();
        });
    };
    this.timer = setTimeout(tick, this.o.intervalMs).unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * One pass: up to maxPerPass request prefixes from where the last pass stopped; after the last
   * namespace the next pass starts from the first again.
   */
  async pass(): Promise<{ examined: number; removed: number; waiting: number; errors: number }> {
    const seen = await this.nextPrefixes();
    const now = (this.o.now ?? Date.now)();
    // Prefixes deleted by the request's own clean-up are never seen again: forget them in time.
    for (const [p, since] of this.state.orphanSince)
      if (now - since > this.o.graceMs + FORGET_AFTER_MS) this.state.orphanSince.delete(p);
    const { store } = this.o;
    const decision = decideSweep(
      seen,
      (p) => {
        const [ns, req] = p.split("/");
        return this.o.requestExists(ns!, req!);
      },
      this.state,
      now,
      this.o.graceMs,
    );
    let removed = 0;
    let errors = 0;
    for (const p of decision.remove) {
      try {
        await store.deletePrefix(p);
        removed++;
      } catch (err) {
        errors++;
        this.o.log?.warn("blob sweep: deleting an orphaned request's blobs failed", { prefix: p, err });
      }
    }
    if (removed) this.o.log?.info("blob sweep removed orphaned requests' blobs", { removed });
    const result = { examined: seen.length, removed, waiting: decision.waiting, errors };
    this.o.hooks?.pass?.(result);
    return result;
  }

  /** Up to maxPerPass request prefixes: namespaces one at a time, each one's requests in pages. */
  private async nextPrefixes(): Promise<string[]> {
    const { store, maxPerPass } = this.o;
    const seen: string[] = [];
    let c: SweepCursor | undefined = this.state.cursor;
    try {
      while (seen.length < maxPerPass) {
        if (!c) {
          const page = await store.listChildren("", 1, this.nsToken);
          const ns = page.names[0];
          if (ns === undefined) {
            this.nsToken = undefined;
            break;
          }
          c = { namespace: ns, namespaceToken: page.next };
        }
        const page = await store.listChildren(c.namespace, maxPerPass - seen.length, c.requestToken);
        for (const r of page.names) seen.push(requestPrefix(c.namespace, r));
        if (page.next) {
          c = { ...c, requestToken: page.next };
          continue;
        }
        this.nsToken = c.namespaceToken;
        c = undefined;
        if (this.nsToken === undefined) break;
      }
    } catch (err) {
      // A token the store no longer accepts: the next pass starts from the beginning.
      this.state.cursor = undefined;
      this.nsToken = undefined;
      throw err;
    }
    this.state.cursor = c;
    return seen;
  }
}
