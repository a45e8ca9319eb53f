// The call graph a running attempt builds: its `calls` become child FunctionCalls (with the
// sequence numbers the operator checks, large inputs stored as blobs), and its `watch`es are
// answered with `resolved` once the calls are final (large outputs fetched first).
import type { Logger, Outcome } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import { SeqFinder, requestOf } from "./attempts.js";
import type { Blobs } from "./blobs.js";
import { type CallSpec, childFromSpec, errorForWorker } from "./translate.js";
import { Waiter } from "./waiter.js";
import type { Session } from "./worker-link.js";

const MAX_CHILDREN_PER_REQUEST = 10_000;
/** The operator refuses call specs over ~1 MiB; past this, inputs go to blobs more eagerly. */
const CHILD_INLINE_BUDGET = 512 * 1024;
const MAX_REMEMBERED_FUNCTIONS = 100_000;
const jsonSize = (v: unknown): number => Buffer.byteLength(JSON.stringify(v), "utf8");

export class GraphRelay {
  /** Function of each child id, so a failure's message names it. */
  private readonly functionOf = new Map<string, string>();

  constructor(
    private readonly api: RuntimeApi,
    private readonly blobs: Blobs,
    private readonly log: Logger,
  ) {}

  /** Watches of one worker connection; they end with it. */
  waiter(session: Session, waitMs: () => number): Waiter {
    return new Waiter(this.api, (o) => this.deliver(session, o), waitMs, this.log);
  }

  /** `calls` of an attempt (seq: its finder; absent for an attempt that is over). */
  async create(
    waiter: Waiter,
    seq: SeqFinder | undefined,
    call: string,
    attempt: number,
    specs: CallSpec[],
  ): Promise<void> {
    if (!Array.isArray(specs) || specs.length === 0) return;
    const finder = seq ?? new SeqFinder(requestOf(call), call);
    const children = [];
    for (const spec of specs) {
      this.remember(spec.id, spec.function);
      const n = finder.find(spec.id);
      if (n === undefined) {
        waiter.failCreation(spec.id, spec.function, `call id ${spec.id} is not a child of ${call}`);
        continue;
      }
      // Inputs that are large together: store all but the small ones as blobs.
      const limit = jsonSize(spec) > CHILD_INLINE_BUDGET ? Math.min(this.blobs.limit, 1024) : this.blobs.limit;
      try {
        children.push(await childFromSpec(spec, n, (form, where) => this.blobs.outbound(form, call, where, limit)));
      } catch (e) {
        waiter.failCreation(spec.id, spec.function, `cannot create call ${spec.id}: ${(e as Error).message}`);
      }
    }
    for (let i = 0; i < children.length; i += MAX_CHILDREN_PER_REQUEST) {
      const chunk = children.slice(i, i + MAX_CHILDREN_PER_REQUEST);
      const r = await this.api.children(call, { attempt, calls: chunk });
      if (r.ok) waiter.prime(r.body.finished);
      else {
        this.log.error("creating child calls failed", {
          call,
          calls: chunk.length,
          status: r.status,
          code: r.code,
          message: r.message,
        });
        for (const c of chunk)
          waiter.failCreation(c.name, c.function, `creating call ${c.name} failed: ${r.code}: ${r.message}`);
      }
    }
  }

  private remember(id: string, fn: string): void {
    if (this.functionOf.size >= MAX_REMEMBERED_FUNCTIONS) {
      for (const k of [...this.functionOf.keys()].slice(0, MAX_REMEMBERED_FUNCTIONS / 2)) this.functionOf.delete(k);
    }
    this.functionOf.set(id, fn);
  }

  /** A watched call is final: tell the worker (fetching a large output first). */
  private deliver(session: Session, o: Outcome): void {
    const fn = this.functionOf.get(o.call);
    if (o.phase !== "Succeeded") {
      session.send({ type: "resolved", id: o.call, error: errorForWorker(o, fn) });
      return;
    }
    const to = { spill: session.spill, files: session.spillFiles };
    this.blobs.inbound(o.output ?? { value: null }, `output of ${o.call}`, to).then(
      (output) => session.send({ type: "resolved", id: o.call, output }),
      (e: Error) =>
        session.send({
          type: "resolved",
          id: o.call,
          error: {
            type: "InternalError",
            message: e.message,
            call: o.call,
            function: fn,
            reason: "internal",
            retryable: false,
          },
        }),
    );
  }
}
