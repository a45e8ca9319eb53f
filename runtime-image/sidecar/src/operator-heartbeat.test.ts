// The operator heartbeat names the last lease answer whose assignments are in the book (its
// operator's epoch and seq), so the operator never takes a call missing from a heartbeat built
// before the answer that delivered it arrived for a lost one. Fake operator API, no worker.
import { describe, expect, it } from "vitest";
import { type Assignment, type LeaseStamp, silentLogger as log } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import { AttemptBook } from "./attempt-book.js";
import { Leaser } from "./leasing.js";
import { OperatorHeartbeat } from "./operator-heartbeat.js";
import { type Link, PodState } from "./pod-state.js";
import type { Waiter } from "./waiter.js";
import type { Session } from "./worker-link.js";

const assignment = (call: string): Assignment => ({
  call,
  attempt: 1,
  function: "f",
  request: call,
  args: [],
  kwargs: {},
  headers: {},
  timeoutSeconds: 30,
  isRoot: true,
});

type LeaseBody = { assignments: Assignment[]; epoch?: string; seq?: number };

function setup() {
  const state = new PodState();
  state.capacity = 4;
  state.link = { session: {} as Session, waiter: {} as Waiter, registered: true } satisfies Link;
  const book = new AttemptBook({ progressIntervalMs: 0, sendProgress: () => {}, changed: state.changed, log });
  /** Lease answers the test gives, one per lease the sidecar sends. */
  const answers: ((body: LeaseBody) => void)[] = [];
  const heartbeats: { calls: { call: string }[]; lease?: LeaseStamp }[] = [];
  const api = {
    lease: () =>
      new Promise<{ ok: true; status: number; body: LeaseBody }>((resolve) =>
        answers.push((body) => resolve({ ok: true, status: 200, body })),
      ),
    heartbeat: async (body: (typeof heartbeats)[number]) => {
      heartbeats.push(body);
      return { ok: true as const, status: 200, body: { cancel: [] } };
    },
  } as unknown as RuntimeApi;
  const leaser = new Leaser({
    state,
    api,
    book,
    dispatcher: { dispatch: () => {} },
    reporter: { fail: () => {} },
    workerReturnMs: 1_000,
    log,
    reregister: () => {},
  });
  const heartbeat = new OperatorHeartbeat({ state, api, book, dispatcher: { cancel: () => {} }, log });
  const tick = () => new Promise((r) => setImmediate(r));
  return { state, leaser, heartbeat, answers, heartbeats, tick };
}

describe("operator heartbeat: the last lease answer", () => {
  it("names the epoch and seq of the last answer once its assignments are in the book", async () => {
    const { state, leaser, heartbeat, answers, heartbeats, tick } = setup();
    leaser.start();
    await tick();
    await heartbeat.beat(); // nothing leased yet, and saying so (not an older sidecar)
    expect(heartbeats.at(-1)).toEqual({ calls: [], draining: false, lease: null });
    answers.shift()!({ assignments: [assignment("c1")], epoch: "op-a", seq: 3 });
    await tick();
    await heartbeat.beat();
    expect(heartbeats.at(-1)).toEqual({
      calls: [{ call: "c1", attempt: 1 }],
      draining: false,
      lease: { epoch: "op-a", seq: 3 },
    });
    answers.shift()!({ assignments: [], epoch: "op-a", seq: 3 }); // an empty answer repeats it
    await tick();
    answers.shift()!({ assignments: [assignment("c2")], epoch: "op-b", seq: 1 }); // a restarted operator
    await tick();
    await heartbeat.beat();
    expect(heartbeats.at(-1)).toMatchObject({
      calls: [{ call: "c1" }, { call: "c2" }],
      lease: { epoch: "op-b", seq: 1 },
    });
    answers.shift()!({ assignments: [] }); // an older operator stamps nothing: claim nothing
    await tick();
    await heartbeat.beat();
    expect(heartbeats.at(-1)).toMatchObject({ lease: null });
    state.stopped = true;
    state.changed.notify();
  });

  it("the answer of the lease that ends a parked one at a drain is not named (it may overtake it)", async () => {
    const { state, leaser, heartbeat, answers, heartbeats, tick } = setup();
    leaser.start();
    await tick();
    answers.shift()!({ assignments: [assignment("c1")], epoch: "op-a", seq: 1 });
    await tick();
    await tick(); // the next lease is parked
    expect(state.leaseInFlight).toBe(true);
    state.draining = true;
    leaser.endParkedLease();
    answers.pop()!({ assignments: [], epoch: "op-a", seq: 2 });
    await tick();
    await heartbeat.beat();
    expect(heartbeats.at(-1)).toMatchObject({ draining: true, lease: { epoch: "op-a", seq: 1 } });
    state.stopped = true;
    answers.shift()!({ assignments: [] });
  });
});

describe("operator heartbeat: cancellations", () => {
  it("cancel only the attempts the heartbeat named, not one of the same call leased since", async () => {
    const state = new PodState();
    const book = new AttemptBook({ progressIntervalMs: 0, sendProgress: () => {}, changed: state.changed, log });
    book.open(assignment("c1"));
    const api = {
      heartbeat: async () => {
        book.open({ ...assignment("c1"), attempt: 2 }); // the retry is leased while the heartbeat is out
        return { ok: true as const, status: 200, body: { cancel: ["c1"] } };
      },
    } as unknown as RuntimeApi;
    const cancelled: [string, number[]][] = [];
    const dispatcher = {
      cancel: (call: string, attempts?: ReadonlySet<number>) => cancelled.push([call, [...(attempts ?? [])]]),
    };
    await new OperatorHeartbeat({ state, api, book, dispatcher, log }).beat();
    expect(cancelled).toEqual([["c1", [1]]]);
  });
});
