// Shutting the pod down (SIGTERM): stop leasing, let the running calls finish until the deadline,
// give the rest back as infrastructure failures, flush every report, let the worker say bye.
import type { LogFields, Logger } from "../../../protocol/index.js";
import type { AttemptBook } from "./attempt-book.js";
import type { Leaser } from "./leasing.js";
import type { OperatorHeartbeat } from "./operator-heartbeat.js";
import type { PodState } from "./pod-state.js";
import type { Reporter } from "./reporter.js";

export interface DrainDeps {
  state: PodState;
  book: AttemptBook;
  leaser: Pick<Leaser, "expireHeld" | "endParkedLease">;
  heartbeat: Pick<OperatorHeartbeat, "beat">;
  reporter: Pick<Reporter, "fail">;
  log: Logger;
  /** Closes everything once drained. */
  stop(): void;
  /** Figures for the last log line. */
  stats(): LogFields;
}

/** Waits (woken by state.changed) until `done` holds or the deadline passes. */
async function until(state: PodState, done: () => boolean, end: number): Promise<void> {
  while (!done() && Date.now() < end) await state.changed.wait(end - Date.now());
}

export async function drain(d: DrainDeps, deadlineSeconds: number): Promise<void> {
  const s = d.state;
  if (s.draining) return;
  s.draining = true;
  const end = Date.now() + deadlineSeconds * 1000;
  d.log.info("draining", { running: d.book.running, deadlineSeconds });
  s.changed.notify();
  d.leaser.expireHeld("the pod is shutting down");
  void d.heartbeat.beat();
  d.leaser.endParkedLease();
  s.link?.session.send({ type: "shutdown", drain: true, deadline: deadlineSeconds });
  await until(s, () => d.book.running === 0 && !s.leaseInFlight, end);
  for (const a of d.book.all()) {
    if (a.state === "running")
      d.reporter.fail(
        a,
        { type: "PodShutdown", message: "the pod shut down before the call finished" },
        "infrastructure",
      );
    else if (a.state === "cancelling") d.book.drop(a);
  }
  // Reports are retried until acknowledged; the pod's grace period bounds this.
  await d.book.serial.idle();
  // The worker says bye and closes once its calls are over; closing first would make it exit 2.
  await until(s, () => s.link === undefined, end);
  await d.heartbeat.beat();
  d.stop();
  d.log.info("drained", d.stats());
}
