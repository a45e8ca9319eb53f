// Attempts into the worker (dispatch.ts): the `assign` carries the timeout the operator resolved
// (call > Application > decorator), and the sidecar's own backstop fires at that same timeout plus
// the grace period. Fake worker session, fake timers.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type Assignment, assignMessage, createLogger } from "../../../protocol/index.js";
import { AttemptBook } from "./attempt-book.js";
import type { Attempt } from "./attempts.js";
import { Dispatcher } from "./dispatch.js";
import type { WorkerMessage } from "./framing.js";
import { Notifier } from "./notifier.js";
import type { Link } from "./pod-state.js";
import type { FailureError, FailureKind } from "./reporter.js";
import { type OperatorValue, toWorker } from "./values.js";
import type { Waiter } from "./waiter.js";
import type { Session } from "./worker-link.js";

const GRACE_MS = 10_000;
const log = createLogger({ level: "error", sink: () => {} });

const assignment = (over: Partial<Assignment> = {}): Assignment => ({
  call: "r1",
  attempt: 1,
  function: "slow",
  request: "r1",
  args: [{ value: 1 }],
  kwargs: { scale: { value: 2 } },
  headers: { "x-team": "demo" },
  timeoutSeconds: 20,
  isRoot: true,
  ...over,
});

function setup() {
  const sent: WorkerMessage[] = [];
  const session = { send: (m: WorkerMessage) => sent.push(m) > 0 } as unknown as Session;
  const link: Link = { session, waiter: {} as Waiter, registered: true };
  const state = { link: link as Link | undefined, draining: false };
  const book = new AttemptBook({ progressIntervalMs: 0, sendProgress: () => {}, changed: new Notifier(), log });
  const failures: { attempt: string; error: FailureError; kind: FailureKind; retryable: boolean }[] = [];
  const reporter = {
    fail: (att: Attempt, error: FailureError, kind: FailureKind, retryable = true) => {
      failures.push({ attempt: att.key, error, kind, retryable });
      book.finish(att);
    },
  };
  const stored = new Map<string, OperatorValue>([["ns/r1/big", { value: "x".repeat(10) }]]);
  const blobs = {
    inbound: async (v: OperatorValue, where: string) => toWorker(v.blob ? stored.get(v.blob)! : v, where),
  };
  const dispatcher = new Dispatcher({ state, book, blobs, reporter, graceMs: GRACE_MS, log });
  const start = (a: Assignment) => {
    const att = book.open(a)!;
    dispatcher.dispatch(att, a, link);
    return att;
  };
  return { sent, state, book, failures, dispatcher, start };
}

describe("dispatching an attempt to the worker", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends assign with the assignment's timeout, in seconds", () => {
    const { sent, start } = setup();
    start(assignment({ timeoutSeconds: 20 }));
    expect(sent).toEqual([
      {
        type: "assign",
        call: "r1",
        attempt: 1,
        request: "r1",
        function: "slow",
        args: [{ json: 1 }],
        kwargs: { scale: { json: 2 } },
        headers: { "x-team": "demo" },
        timeout: 20,
      },
    ]);
    // What PROTOCOL.md §9 says an assign is.
    expect(assignMessage.safeParse(sent[0]).error?.issues).toBeUndefined();
  });

  it("arms its backstop at that same timeout plus the grace period", () => {
    const { sent, failures, start } = setup();
    start(assignment({ timeoutSeconds: 20 }));
    vi.advanceTimersByTime(20_000 + GRACE_MS - 1);
    expect(failures).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(failures).toEqual([
      {
        attempt: "r1#1",
        kind: "timeout",
        retryable: true,
        error: { type: "FunctionTimeout", message: "function slow timed out after 20s (stopped by the sidecar)" },
      },
    ]);
    expect(sent.at(-1)).toEqual({ type: "cancel", call: "r1" });
  });

  it("follows a timeout the Application raised above the decorator's", () => {
    const { sent, failures, start } = setup();
    start(assignment({ timeoutSeconds: 300 }));
    expect(sent[0]).toMatchObject({ type: "assign", timeout: 300 });
    vi.advanceTimersByTime(300_000 + GRACE_MS - 1);
    expect(failures).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(failures.map((f) => f.error.message)).toEqual([
      "function slow timed out after 300s (stopped by the sidecar)",
    ]);
  });

  it("disarms the backstop of an attempt that ended", () => {
    const { book, failures, start } = setup();
    const att = start(assignment());
    book.finish(att);
    vi.advanceTimersByTime(3_600_000);
    expect(failures).toEqual([]);
  });

  it("fetches blob inputs first, then sends assign with the timeout", async () => {
    const { sent, book, start } = setup();
    start(assignment({ args: [{ blob: "ns/r1/big" }], timeoutSeconds: 7.5 }));
    expect(sent).toEqual([]);
    await book.serial.idle();
    expect(sent).toEqual([expect.objectContaining({ type: "assign", args: [{ json: "xxxxxxxxxx" }], timeout: 7.5 })]);
  });

  it("gives an attempt whose input cannot be read back as an infrastructure failure", () => {
    const { sent, failures, start } = setup();
    start(assignment({ args: [{ call: "r1-aaaaaaaaaaaaaaaa" }] }));
    expect(sent).toEqual([]);
    expect(failures).toMatchObject([{ kind: "infrastructure", error: { type: "InputUnavailable" } }]);
  });

  it("relays the operator's cancellation and drops the attempt when the worker is gone", () => {
    const { sent, state, book, dispatcher, start } = setup();
    const att = start(assignment());
    dispatcher.cancel("r1");
    expect(sent.at(-1)).toEqual({ type: "cancel", call: "r1" });
    expect(att.state).toBe("cancelling");
    vi.advanceTimersByTime(3_600_000); // the backstop is off
    expect(book.all()).toHaveLength(1);

    const other = start(assignment({ call: "r2", request: "r2" }));
    state.link = undefined;
    dispatcher.cancel("r2");
    expect(other.state).toBe("reporting");
    expect(book.get("r2", 1)).toBeUndefined();
  });

  it("a cancellation of named attempts leaves a newer attempt of the call running", () => {
    const { sent, dispatcher, start } = setup();
    const newer = start(assignment({ attempt: 2 }));
    sent.length = 0;
    dispatcher.cancel("r1", new Set([1]));
    expect(newer.state).toBe("running");
    expect(sent).toEqual([]);
  });
});
