// Test support: a Clock on vitest's fake timers. `advance` moves the clock and fires the timers due
// on the way (each at its own time), with promise callbacks settled in between. setImmediate stays
// real (the dispatcher's pump runs on the next turn of the event loop, not at a later time):
// `settle` lets those turns run without moving the clock.
import { vi } from "vitest";
import type { Clock } from "../kube/index.js";

export interface FakeClock extends Clock {
  /** Moves time forward by `ms`, running timers and immediates as they come due. */
  advance(ms: number): Promise<void>;
  /** Runs what is due now (immediates, zero-delay timers) and settles promises. */
  settle(): Promise<void>;
}

export const T0 = Date.parse("2026-03-01T00:00:00Z");

/** Fakes timers and Date (call `vi.useRealTimers()` after the test). */
export function useFakeClock(start = T0): FakeClock {
  vi.useFakeTimers({
    now: start,
    toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"],
  });
  const settle = async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      await vi.advanceTimersByTimeAsync(0);
    }
  };
  return {
    now: () => Date.now(),
    advance: async (ms) => {
      await vi.advanceTimersByTimeAsync(ms);
      await settle();
    },
    settle,
  };
}
