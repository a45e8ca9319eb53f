import { describe, expect, it, vi } from "vitest";
import type { KubeClient } from "./client.js";
import { FencedError, isFenced } from "./fence.js";
import { FOLLOWER, attemptAt, checkFence, deadlinePassed, holdConfirmed, steppedDown } from "./leader-state.js";
import { KubeObjectWriter } from "./writer.js";

const DEADLINE = 300;

describe("holdConfirmed", () => {
  it("starts a term from when the acquiring write was sent, not when it was answered", () => {
    const sent = attemptAt(FOLLOWER, 1000);
    const { state, event } = holdConfirmed(FOLLOWER, sent, 1250, DEADLINE);
    expect(event).toBe("started");
    expect(state).toEqual({ leading: true, term: 1, renewSentAt: 1000, leadUntil: 1300 });
  });

  it("does not start leading on an acquire answered after its own deadline", () => {
    const { state, event } = holdConfirmed(FOLLOWER, attemptAt(FOLLOWER, 1000), 1300, DEADLINE);
    expect(event).toBe("ignored");
    expect(state.leading).toBe(false);
  });

  it("extends the term to the renew's send time plus the deadline", () => {
    const s = holdConfirmed(FOLLOWER, attemptAt(FOLLOWER, 0), 10, DEADLINE).state;
    const { state, event } = holdConfirmed(s, attemptAt(s, 100), 290, DEADLINE);
    expect(event).toBe("renewed");
    expect(state.leadUntil).toBe(400); // not 290 + 300
    expect(state.term).toBe(1);
  });

  it("a renew answered at or after the current deadline ends the term", () => {
    const s = holdConfirmed(FOLLOWER, attemptAt(FOLLOWER, 0), 10, DEADLINE).state;
    const { state, event } = holdConfirmed(s, attemptAt(s, 100), 300, DEADLINE);
    expect(event).toBe("expired");
    expect(state.leading).toBe(false);
  });

  it("ignores a renew answered after stepping down, and one sent in an earlier term", () => {
    const led = holdConfirmed(FOLLOWER, attemptAt(FOLLOWER, 0), 10, DEADLINE).state;
    const renew = attemptAt(led, 100);
    const down = steppedDown(led);
    expect(holdConfirmed(down, renew, 150, DEADLINE)).toEqual({ state: down, event: "ignored" });
    // led again (term 2) meanwhile: the old term's renew must not extend the new term
    const again = holdConfirmed(down, attemptAt(down, 200), 210, DEADLINE).state;
    expect(again.term).toBe(2);
    expect(holdConfirmed(again, renew, 220, DEADLINE)).toEqual({ state: again, event: "ignored" });
  });

  it("deadlinePassed holds from leadUntil on, only while leading", () => {
    const s = holdConfirmed(FOLLOWER, attemptAt(FOLLOWER, 0), 10, DEADLINE).state;
    expect(deadlinePassed(s, 299)).toBe(false);
    expect(deadlinePassed(s, 300)).toBe(true);
    expect(deadlinePassed(steppedDown(s), 1000)).toBe(false);
  });
});

describe("checkFence", () => {
  const led = holdConfirmed(FOLLOWER, attemptAt(FOLLOWER, 0), 10, DEADLINE).state;

  it("lets the leader write until its deadline, counted from the renew's send time", () => {
    expect(() => checkFence(led, 299, "create Pod ns/p")).not.toThrow();
    expect(() => checkFence(led, 300, "create Pod ns/p")).toThrow(FencedError);
  });

  it("refuses a replica that never led or stepped down, naming the write", () => {
    expect(() => checkFence(FOLLOWER, 0, "create Pod ns/p")).toThrow(/create Pod ns\/p: refused.*not led/);
    expect(() => checkFence(steppedDown(led), 100, "delete Secret ns/s")).toThrow(/delete Secret ns\/s.*stepped down/);
  });
});

describe("KubeObjectWriter fence", () => {
  function writer(open: boolean) {
    const request = vi.fn(async () => ({}));
    const fence = (what: string) => {
      if (!open) throw new FencedError(what, "it stepped down");
    };
    return { request, w: new KubeObjectWriter({ request } as unknown as KubeClient, undefined, { fence }) };
  }
  const ref = { apiVersion: "v1", kind: "ConfigMap", namespace: "ns", name: "cm" };
  const writes = (w: KubeObjectWriter) => [
    () => w.create({ ...ref, metadata: { namespace: "ns", name: "cm" } }),
    () => w.patchStatus(ref, { phase: "x" }),
    () => w.replaceStatus(ref, { phase: "x" }),
    () => w.patchMeta(ref, { labels: { a: "b" } }),
    () => w.patch(ref, { data: {} }),
    () => w.replace({ ...ref, metadata: { namespace: "ns", name: "cm" } }),
    () => w.delete(ref),
  ];

  it("refuses every mutating request before sending it, with FencedError naming the object", async () => {
    const { request, w } = writer(false);
    for (const write of writes(w)) {
      const err = await write().catch((e: unknown) => e);
      expect(isFenced(err)).toBe(true);
      expect((err as FencedError).what).toMatch(/ConfigMap.* ns\/cm$/);
    }
    expect(request).not.toHaveBeenCalled();
    expect(w.stats).toEqual({ creates: 0, statusPatches: 0, metaPatches: 0, deletes: 0 });
    await w.get(ref); // reads are not fenced
    expect(request).toHaveBeenCalledTimes(1);
  });

  it("sends every write when the fence is open", async () => {
    const { request, w } = writer(true);
    for (const write of writes(w)) await write();
    expect(request).toHaveBeenCalledTimes(7);
  });
});
