import { describe, expect, it } from "vitest";
import type { WaitingPhase } from "./actions.js";
import type { Call } from "./calls.js";
import { decideWaitingWrite } from "./decide-waiting.js";
import { memoryView, mkCall } from "./testing.js";

const NOW = Date.parse("2026-03-01T00:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

describe("decideWaitingWrite", () => {
  const input = mkCall("a", {}, { phase: "Running", pod: "p", attempts: 1 });
  const done = mkCall("d", {}, { phase: "Succeeded", output: { value: 1 } });
  const cases: {
    name: string;
    call: Call | undefined;
    phase: WaitingPhase;
    queued?: boolean;
    want: Record<string, unknown> | undefined;
  }[] = [
    {
      name: "Queued: still on its queue → Queued with the time it was marked",
      call: mkCall("c"),
      phase: "Queued",
      queued: true,
      want: { phase: "Queued", queuedTime: iso(NOW) },
    },
    {
      name: "Queued keeps an earlier queuedTime",
      call: mkCall("c", {}, { phase: "Blocked", queuedTime: iso(0) }),
      phase: "Queued",
      queued: true,
      want: { phase: "Queued" },
    },
    { name: "Queued: already taken by a pod", call: mkCall("c"), phase: "Queued", queued: false, want: undefined },
    {
      name: "Queued: Running meanwhile",
      call: mkCall("c", {}, { phase: "Running", pod: "p", attempts: 1 }),
      phase: "Queued",
      queued: true,
      want: undefined,
    },
    {
      name: "Blocked: an input still runs",
      call: mkCall("c", { args: [{ call: "a" }] }),
      phase: "Blocked",
      want: { phase: "Blocked" },
    },
    {
      name: "Blocked: its inputs are done meanwhile",
      call: mkCall("c", { args: [{ call: "d" }] }),
      phase: "Blocked",
      want: undefined,
    },
    {
      name: "Blocked: queued meanwhile",
      call: mkCall("c", { args: [{ call: "a" }] }),
      phase: "Blocked",
      queued: true,
      want: undefined,
    },
    {
      name: "Blocked: a map waiting for its itemsFrom",
      call: mkCall("m", { map: { itemsFrom: "a" } }),
      phase: "Blocked",
      want: { phase: "Blocked" },
    },
    {
      name: "Running: a map whose items run",
      call: mkCall("m", { map: { items: [{ value: 1 }] } }, { phase: "Blocked" }),
      phase: "Running",
      want: { phase: "Running" },
    },
    { name: "Running: only a map or reduce is marked so", call: mkCall("c"), phase: "Running", want: undefined },
    {
      name: "a finished call is never marked",
      call: mkCall("c", {}, { phase: "Failed" }),
      phase: "Queued",
      queued: true,
      want: undefined,
    },
    { name: "a deleted call", call: undefined, phase: "Blocked", want: undefined },
  ];
  for (const tc of cases)
    it(tc.name, () => {
      const calls = [input, done, ...(tc.call ? [tc.call] : [])];
      const view = memoryView(calls, { queued: tc.queued && tc.call ? [tc.call.metadata.name!] : [] });
      const got = decideWaitingWrite(tc.call, tc.phase, view, NOW);
      expect(got).toEqual(tc.want ? [{ type: "status", patch: tc.want }] : []);
    });
});
