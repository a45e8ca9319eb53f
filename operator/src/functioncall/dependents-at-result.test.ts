// The engine on fakes: a result's dependents assigned while the result is written (their Running
// write beside its Succeeded write), through the runtime API as sidecars use it.
import { afterEach, describe, expect, it } from "vitest";
import { type Assignment, childName } from "../../../protocol/index.js";
import { type Harness, harness } from "./test-harness.js";

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const c0 = childName("r", "r", 0);
const c1 = childName("r", "r", 1);

/** r (on pf) makes c0 of g and c1 of g taking c0's output; pg runs c0 and parks its next lease. */
async function inputRunsDependentWaits(more: { name: string; input?: string }[] = []) {
  h = await harness();
  h.pods.set("pg", "g");
  const root = await h.runRoot("r");
  const first = h.lease("pg");
  await h.until("the lease parked", () => h.engine.dispatcher.leaseWaiting("ns", "pg"));
  const made = await h.req("pf", "POST", "/calls/r/children", {
    attempt: root.attempt,
    calls: [
      { name: c0, sequence: 0, function: "g", args: [{ value: 1 }] },
      { name: c1, sequence: 1, function: "g", args: [{ call: c0 }] },
      ...more.map((m, i) => ({
        name: m.name,
        sequence: 2 + i,
        function: "g",
        args: [{ call: c0 }, ...(m.input ? [{ call: m.input }] : [])],
      })),
    ],
  });
  expect(made.status).toBe(200);
  expect((await first).map((a) => a.call)).toEqual([c0]);
  let answered: Assignment[] | undefined;
  const next = h.lease("pg", 4, 3000).then((a) => (answered = a));
  await h.until("the next lease parked", () => h.engine.dispatcher.leaseWaiting("ns", "pg"));
  return { next, answered: () => answered };
}

describe("engine on fakes: dependents assigned while their input's result is written", () => {
  it("the dependent's Running write goes out beside the input's Succeeded write; the lease is answered once both are persisted", async () => {
    const { next, answered } = await inputRunsDependentWaits();
    let open!: () => void;
    h.api.statusGates.set(c0, new Promise<void>((r) => (open = r)));
    const reported = h.result("pg", c0, 1, { value: 10 });
    await h.until("c1's Running written", () => h.api.get(`ns/${c1}`)?.status?.phase === "Running");
    // c0's Succeeded write is still in flight: nobody runs c1 yet.
    expect(h.api.get(`ns/${c0}`)!.status?.phase).not.toBe("Succeeded");
    await new Promise((res) => setTimeout(res, 20));
    expect(answered()).toBeUndefined();
    open();
    expect((await reported).status).toBe(200);
    expect(await next).toEqual([expect.objectContaining({ call: c1, attempt: 1, args: [{ value: 10 }] })]);
    expect(h.api.writesOf(c1)).toEqual(["create", "status:Running"]);
    const s0 = h.api.get(`ns/${c0}`)!.status!;
    const s1 = h.api.get(`ns/${c1}`)!.status!;
    expect(s1).toMatchObject({ pod: "pg", attempts: 1, queuedTime: s1.startTime });
    expect(Date.parse(s1.startTime!)).toBeGreaterThanOrEqual(Date.parse(s0.completionTime!));
    expect(h.engine.dispatcher.podActivity("ns", "pg")).toMatchObject({ running: 1 });
  });

  it("an input whose Succeeded write fails: the dependent's assignment is taken back; the retried report assigns it again", async () => {
    const { next, answered } = await inputRunsDependentWaits();
    h.api.failNextStatus.add(c0);
    expect((await h.result("pg", c0, 1, { value: 10 })).status).toBeGreaterThanOrEqual(500);
    await h.until("c1 taken back", () => h.api.writesOf(c1).length === 3);
    expect(h.api.writesOf(c1)).toEqual(["create", "status:Running", "status:-"]);
    expect(h.api.get(`ns/${c1}`)!.status ?? {}).toEqual({});
    expect(h.engine.dispatcher.podActivity("ns", "pg")).toMatchObject({ running: 1 });
    expect(answered()).toBeUndefined();
    expect((await h.result("pg", c0, 1, { value: 10 })).status).toBe(200);
    expect(await next).toEqual([expect.objectContaining({ call: c1, attempt: 1, args: [{ value: 10 }] })]);
    expect(h.api.get(`ns/${c1}`)!.status).toMatchObject({ phase: "Running", pod: "pg", attempts: 1 });
  });

  it("only dependents the result makes ready: one that still waits on another input is left to its reaction", async () => {
    const c2 = childName("r", "r", 2);
    const c3 = childName("r", "r", 3);
    // c2 takes c0 and c1 (c1 not run yet); c3 takes c0 only.
    const { next } = await inputRunsDependentWaits([{ name: c2, input: c1 }, { name: c3 }]);
    expect((await h.result("pg", c0, 1, { value: 10 })).status).toBe(200);
    expect((await next).map((a) => a.call).sort()).toEqual([c1, c3].sort());
    expect(h.api.writesOf(c2)).toEqual(["create"]);
  });
});
