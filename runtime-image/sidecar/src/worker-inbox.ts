// What the worker says after the handshake (PROTOCOL.md §5), one handler per message type, each
// applied in the order received (per attempt, through the book's Serial). A message that breaks
// the protocol's rules is answered where something would otherwise wait for it forever.
import { failureReason, type Logger, type WorkerToSidecar } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import type { AttemptBook } from "./attempt-book.js";
import { type Attempt, attemptKey, requestOf } from "./attempts.js";
import type { Blobs } from "./blobs.js";
import type { WorkerMessage } from "./framing.js";
import type { GraphRelay } from "./graph-relay.js";
import type { Link } from "./pod-state.js";
import type { Reporter } from "./reporter.js";
import { handleState } from "./state.js";
import { failureFromWorker, internalError } from "./translate.js";
import type { Msg } from "./worker-parse.js";

export interface InboxDeps {
  api: RuntimeApi;
  blobs: Blobs;
  book: AttemptBook;
  reporter: Pick<Reporter, "succeed" | "delegate" | "fail">;
  graph: Pick<GraphRelay, "create">;
  log: Logger;
}

/** The messages the inbox handles (the Session keeps the handshake and heartbeat answers). */
export type InboxType = Exclude<WorkerToSidecar["type"], "hello" | "fatal" | "heartbeat_ack">;

interface Ctx {
  d: InboxDeps;
  link: Link;
}

type Handler<T extends InboxType> = (x: Ctx, msg: Msg<T>) => void;

const isLive = (att: Attempt | undefined): att is Attempt => att !== undefined && att.state !== "reporting";

/** Runs `then` for an attempt still running; a late message of one that is over is ignored. */
function ifLive(x: Ctx, m: Msg<"result" | "tail" | "failure">, then: (att: Attempt) => void): void {
  const att = x.d.book.get(m.call, m.attempt);
  if (isLive(att)) return then(att);
  // Never given (a forged or confused outcome) or over (a duplicate): either way the first word stands.
  const what = att ? "a late message of an attempt that is over" : `a ${m.type} of an attempt the worker was not given`;
  x.d.blobs.spillDir?.removeNamed(m);
  x.d.log.info(`ignoring ${what}`, { type: m.type, attempt: attemptKey(m.call, m.attempt) });
}

const HANDLERS: { [T in InboxType]: Handler<T> } = {
  calls: (x, m) => {
    // Even for an attempt that is over: creation is idempotent and harmless.
    const att = x.d.book.get(m.call, m.attempt);
    void x.d.book.serial.run(attemptKey(m.call, m.attempt), () =>
      x.d.graph.create(x.link.waiter, att?.seq, m.call, m.attempt, m.calls),
    );
  },
  watch: (x, m) => {
    const att = x.d.book.get(m.call, m.attempt);
    void x.d.book.serial.run(attemptKey(m.call, m.attempt), () =>
      x.link.waiter.watch(m.ids, att?.request ?? requestOf(m.call)),
    );
  },
  result: (x, m) => ifLive(x, m, (att) => x.d.reporter.succeed(att, m.output)),
  tail: (x, m) => ifLive(x, m, (att) => x.d.reporter.delegate(att, m.target)),
  failure: (x, m) =>
    ifLive(x, m, (att) => {
      const f = failureFromWorker(m.attempt, m.error);
      x.d.reporter.fail(att, f.error, f.kind, f.retryable);
    }),
  cancelled: (x, m) => {
    const att = x.d.book.get(m.call, m.attempt);
    if (att?.state === "cancelling") x.d.book.drop(att);
    else if (isLive(att))
      x.d.reporter.fail(att, { type: "Cancelled", message: "the worker cancelled the attempt" }, "infrastructure");
  },
  progress: (x, m) => {
    if (!isLive(x.d.book.get(m.call, m.attempt))) return;
    x.d.book.progress.push(m.call, {
      current: m.current,
      total: m.total,
      ...(m.message !== null ? { message: m.message.slice(0, 1024) } : {}),
    });
  },
  metric: (x, m) => {
    const att = x.d.book.get(m.call, m.attempt);
    if (att) x.d.book.addMetric(att, m.kind, m.name, m.value);
  },
  state_get: (x, m) => void handleState(x.d.api, x.d.blobs, x.link.session, m, x.d.log),
  state_set: (x, m) => void handleState(x.d.api, x.d.blobs, x.link.session, m, x.d.log),
  bye: (x, m) => x.d.log.info("the worker is exiting", { unfinished: m.unfinished }),
};

// -- invalid messages -----------------------------------------------------------------------------
type Answer = (x: Ctx, raw: WorkerMessage, why: string) => void;

const text = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * The attempt a broken outcome names: by call and attempt, or, when the attempt field itself is
 * broken, the one attempt of that call in flight (a call runs one attempt at a time), so that a
 * malformed outcome never leaves the attempt waiting for its timeout.
 */
function namedAttempt(x: Ctx, raw: WorkerMessage): Attempt | undefined {
  const call = text(raw.call);
  if (call === undefined) return undefined;
  if (typeof raw.attempt === "number" && Number.isInteger(raw.attempt) && raw.attempt >= 1) {
    return x.d.book.get(call, raw.attempt);
  }
  const live = x.d.book.all().filter((a) => a.call === call && isLive(a));
  return live.length === 1 ? live[0] : undefined;
}

/** A broken outcome still ends the attempt: as the worker's own bug (internal), not retried. */
const failAttempt: Answer = (x, raw, why) => {
  const att = namedAttempt(x, raw);
  if (!isLive(att)) return;
  const kind = failureReason("internal").kind ?? "user";
  x.d.reporter.fail(att, { type: "ProtocolError", message: why.slice(0, 32768) }, kind, false);
};

const ANSWERS = new Map<string, Answer>([
  ["result", failAttempt],
  ["tail", failAttempt],
  ["failure", failAttempt],
  // No child of a broken batch is created: their watches fail with InternalError.
  [
    "calls",
    (x, raw, why) => {
      for (const spec of list(raw.calls)) {
        const s = (spec ?? {}) as Record<string, unknown>;
        const id = text(s.id);
        if (id) x.link.waiter.failCreation(id, text(s.function), `the worker's calls message is invalid: ${why}`);
      }
    },
  ],
  [
    "watch",
    (x, raw, why) => {
      for (const id of list(raw.ids).filter((v): v is string => typeof v === "string"))
        x.link.session.send({ type: "resolved", id, error: internalError(id, undefined, `invalid watch: ${why}`) });
    },
  ],
  ["state_get", (x, raw, why) => replyInvalid(x, raw, why)],
  ["state_set", (x, raw, why) => replyInvalid(x, raw, why)],
]);

function replyInvalid(x: Ctx, raw: WorkerMessage, why: string): void {
  const rid = text(raw.rid);
  if (rid) x.link.session.send({ type: "reply", rid, ok: false, error: `invalid ${raw.type}: ${why}` });
}

export class WorkerInbox {
  constructor(private readonly d: InboxDeps) {}

  handle(link: Link, msg: Msg<InboxType>): void {
    (HANDLERS[msg.type] as Handler<InboxType>)({ d: this.d, link }, msg);
  }

  /** A message that breaks the rules (logged by the Session): answer what it names, if anything. */
  invalid(link: Link, raw: WorkerMessage, problems: string[]): void {
    this.d.blobs.spillDir?.removeNamed(raw); // nothing will upload them
    ANSWERS.get(raw.type)?.({ d: this.d, link }, raw, problems.join("; "));
  }
}
