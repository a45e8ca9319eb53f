import { describe, expect, it } from "vitest";
import { createLogger, type Outcome } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import { Waiter } from "./waiter.js";

type WaitBody = { calls: string[]; mode: string; waitMs: number };

/** A /wait stand-in: each poll is answered when the test says so. */
function stubApi() {
  const polls: { body: WaitBody; answer: (outcomes: Outcome[] | { status: number }) => void }[] = [];
  const api = {
    wait: (body: WaitBody) =>
      new Promise((resolve) =>
        polls.push({
          body,
          answer: (o) =>
            resolve(
              Array.isArray(o)
                ? { ok: true, status: 200, body: { outcomes: o } }
                : { ok: false, status: o.status, verdict: "final", code: "not_in_request", message: "no" },
            ),
        }),
      ),
  } as unknown as RuntimeApi;
  return { api, polls };
}

const ok = (call: string, value: unknown): Outcome => ({ call, phase: "Succeeded", output: { value } });
const tick = () => new Promise((r) => setImmediate(r));
const log = createLogger({ level: "error", sink: () => {} });

describe("Waiter", () => {
  it("polls the watches of one tick together, per request, until each id is answered once", async () => {
    const { api, polls } = stubApi();
    const got: Outcome[] = [];
    const w = new Waiter(
      api,
      (o) => got.push(o),
      () => 1000,
      log,
    );
    w.watch(["ra-1", "ra-2"], "ra");
    w.watch(["rb-1"], "rb");
    w.watch(["ra-1"], "ra"); // already polled: not again
    await tick();
    expect(polls.map((p) => p.body)).toEqual([
      { calls: ["ra-1", "ra-2"], mode: "any", waitMs: 1000 },
      { calls: ["rb-1"], mode: "any", waitMs: 1000 },
    ]);
    polls[0]!.answer([ok("ra-2", 2)]);
    await tick();
    expect(got).toEqual([ok("ra-2", 2)]);
    expect(polls[2]!.body.calls).toEqual(["ra-1"]); // the rest, polled again
    polls[2]!.answer([ok("ra-1", 1), ok("ra-2", 2)]); // ra-2 again: delivered once only
    polls[1]!.answer([ok("rb-1", 3)]);
    await tick();
    expect(got.map((o) => o.call)).toEqual(["ra-2", "ra-1", "rb-1"]);
    expect(polls).toHaveLength(3);
  });

  it("answers from known outcomes without asking, and fails ids whose creation failed", async () => {
    const { api, polls } = stubApi();
    const got: Outcome[] = [];
    const w = new Waiter(
      api,
      (o) => got.push(o),
      () => 1000,
      log,
    );
    w.prime([ok("r-1", 1)]);
    w.failCreation("r-2", "f", "creating call r-2 failed: invalid_body: nope");
    w.watch(["r-1", "r-2"], "r");
    await tick();
    expect(polls).toEqual([]);
    expect(got).toEqual([
      ok("r-1", 1),
      {
        call: "r-2",
        phase: "Failed",
        error: { type: "InternalError", message: "creating call r-2 failed: invalid_body: nope", reason: "internal" },
      },
    ]);
  });

  it("fails the watches of a poll the operator refuses, and delivers nothing once closed", async () => {
    const { api, polls } = stubApi();
    const got: Outcome[] = [];
    const w = new Waiter(
      api,
      (o) => got.push(o),
      () => 1000,
      log,
    );
    w.watch(["r-1"], "r");
    await tick();
    polls[0]!.answer({ status: 400 });
    await tick();
    expect(got).toMatchObject([{ call: "r-1", phase: "Failed", error: { type: "InternalError" } }]);
    w.watch(["r-3"], "r");
    await tick();
    w.close();
    polls[1]!.answer([ok("r-3", 3)]);
    await tick();
    expect(got).toHaveLength(1);
  });
});
