// Attempts into the worker and, when they must end early, out of it: a leased attempt's inputs
// are resolved (blobs fetched) and sent as `assign` with the timeout the operator resolved (call >
// Application > decorator); a backstop timer at that same timeout plus a grace period stops an
// attempt the worker could not stop itself; the operator's cancellations are relayed.
import { rmSync } from "node:fs";
import type { Assignment, Logger } from "../../../protocol/index.js";
import type { AttemptBook } from "./attempt-book.js";
import type { Attempt } from "./attempts.js";
import type { Blobs } from "./blobs.js";
import type { WorkerMessage } from "./framing.js";
import type { Link, PodState } from "./pod-state.js";
import type { Reporter } from "./reporter.js";
import { hasBlob, toWorker, type OperatorValue, type WorkerForm } from "./values.js";

export interface DispatchDeps {
  state: Pick<PodState, "link" | "draining">;
  book: AttemptBook;
  blobs: Pick<Blobs, "inbound">;
  reporter: Pick<Reporter, "fail">;
  /** The backstop fires this long after the attempt's timeout. */
  graceMs: number;
  log: Logger;
}

type Inputs = { args: WorkerForm[]; kwargs: Record<string, WorkerForm> };

export const POD_SHUTDOWN = { type: "PodShutdown", message: "the pod is shutting down" };

/** The worker's `assign` (PROTOCOL.md §9) of a leased attempt whose inputs are resolved. */
export function assignMessage(a: Assignment, { args, kwargs }: Inputs): WorkerMessage {
  return {
    type: "assign",
    call: a.call,
    attempt: a.attempt,
    request: a.request,
    function: a.function,
    args,
    kwargs,
    headers: a.headers,
    timeout: a.timeoutSeconds,
  };
}

/** Inputs without blobs, converted in place (no await, so they go out in the order leased). */
function inlineInputs(a: Assignment): Inputs {
  const args = a.args.map((v, i) => toWorker(v, `args[${i}]`));
  const kwargs: Record<string, WorkerForm> = {};
  for (const [k, v] of Object.entries(a.kwargs)) kwargs[k] = toWorker(v, `kwargs.${k}`);
  return { args, kwargs };
}

const anyBlob = (a: Assignment): boolean => [...a.args, ...Object.values(a.kwargs)].some((v) => hasBlob(v));

export class Dispatcher {
  constructor(private readonly d: DispatchDeps) {}

  /** Sends a leased attempt to the worker of `link` and arms its backstop. */
  dispatch(att: Attempt, a: Assignment, link: Link): void {
    att.timer = setTimeout(() => this.onTimeout(att), att.timeoutSeconds * 1000 + this.d.graceMs);
    att.timer.unref();
    if (!anyBlob(a)) {
      // The common case goes out at once, in the order leased (before a later shutdown).
      let inputs: Inputs;
      try {
        inputs = inlineInputs(a);
      } catch (e) {
        return this.inputUnavailable(att, e);
      }
      return this.assign(att, a, link, inputs);
    }
    void this.d.book.serial.run(att.key, () => this.fetchAndAssign(att, a, link));
  }

  private async fetchAndAssign(att: Attempt, a: Assignment, link: Link): Promise<void> {
    let inputs: Inputs;
    try {
      inputs = await this.fetchInputs(a, link, (att.spills ??= []));
    } catch (e) {
      return this.inputUnavailable(att, e);
    }
    if (att.state !== "running") {
      for (const path of att.spills?.splice(0) ?? []) rmSync(path, { force: true });
      return;
    }
    if (this.d.state.draining) return this.d.reporter.fail(att, POD_SHUTDOWN, "infrastructure");
    this.assign(att, a, link, inputs);
  }

  private async fetchInputs(a: Assignment, link: Link, spills: string[]): Promise<Inputs> {
    const to = { spill: link.session.spill, files: spills };
    const inbound = (v: OperatorValue, where: string) => this.d.blobs.inbound(v, where, to);
    const args = await Promise.all(a.args.map((v, i) => inbound(v, `args[${i}]`)));
    const kwargs: Record<string, WorkerForm> = {};
    for (const [k, v] of Object.entries(a.kwargs)) kwargs[k] = await inbound(v, `kwargs.${k}`);
    return { args, kwargs };
  }

  private inputUnavailable(att: Attempt, e: unknown): void {
    this.d.reporter.fail(att, { type: "InputUnavailable", message: (e as Error).message }, "infrastructure");
  }

  private assign(att: Attempt, a: Assignment, link: Link, inputs: Inputs): void {
    if (!link.session.send(assignMessage(a, inputs)))
      this.d.reporter.fail(att, { type: "WorkerLost", message: "the worker connection closed" }, "infrastructure");
  }

  /** The backstop: the worker should have timed the attempt out by now. */
  private onTimeout(att: Attempt): void {
    if (att.state !== "running") return;
    this.d.log.warn("attempt ran past its timeout, stopping it", {
      attempt: att.key,
      timeoutSeconds: att.timeoutSeconds,
    });
    this.d.state.link?.session.send({ type: "cancel", call: att.call });
    this.d.reporter.fail(
      att,
      {
        type: "FunctionTimeout",
        message: `function ${att.function} timed out after ${att.timeoutSeconds}s (stopped by the sidecar)`,
      },
      "timeout",
    );
  }

  /**
   * The operator no longer wants the call (deleted request, or it went elsewhere). `attempts`: only
   * those (the ones the heartbeat it answers named: a newer attempt leased since is current).
   */
  cancel(call: string, attempts?: ReadonlySet<number>): void {
    for (const a of this.d.book.all()) {
      if (a.call !== call || a.state !== "running" || (attempts && !attempts.has(a.attempt))) continue;
      this.d.log.info("cancelling at the operator's request", { attempt: a.key });
      if (a.timer) clearTimeout(a.timer);
      a.state = "cancelling";
      if (!this.d.state.link?.session.send({ type: "cancel", call })) this.d.book.drop(a);
    }
  }
}
