// Outcomes of attempts to the operator: a result, a tail call or a failure, each sent in the
// attempt's order and retried until the operator acknowledges it. The attempt frees its worker
// slot at once and stays in heartbeats until its report is through.
import type { z } from "zod";
import type { failureRequest, Logger, ValueForm } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import type { AttemptBook } from "./attempt-book.js";
import type { Attempt } from "./attempts.js";
import { BlobError, type Blobs } from "./blobs.js";
import type { Reply } from "./operator-client.js";

export type Failure = z.input<typeof failureRequest>;
export type FailureError = Failure["error"];
export type FailureKind = Failure["kind"];

export class Reporter {
  constructor(
    private readonly api: RuntimeApi,
    private readonly blobs: Blobs,
    private readonly book: AttemptBook,
    private readonly log: Logger,
  ) {}

  /** The attempt succeeded with `output` (stored as a blob if large). */
  succeed(att: Attempt, output: ValueForm): void {
    this.book.finish(att);
    void this.report(att, async () =>
      this.api.result(att.call, {
        attempt: att.attempt,
        output: await this.blobs.outbound(output, att.call, "output"),
      }),
    );
  }

  /** The attempt returned a tail call: `target`'s outcome is the call's. */
  delegate(att: Attempt, target: string): void {
    this.book.finish(att);
    void this.report(att, () => this.api.tail(att.call, { attempt: att.attempt, tailCall: target }));
  }

  /** The attempt failed; a no-op for an attempt whose outcome is already being reported. */
  fail(att: Attempt, error: FailureError, kind: FailureKind, retryable = true): void {
    if (att.state === "reporting") return;
    this.book.finish(att);
    void this.report(att, () => this.api.failure(att.call, { attempt: att.attempt, error, kind, retryable }));
  }

  /** Reports in the attempt's order; the attempt stays in heartbeats until the operator has it. */
  private report(att: Attempt, send: () => Promise<Reply<unknown>>): Promise<void> {
    return this.book.serial.run(att.key, async () => {
      try {
        this.verdict(att, await send());
      } catch (e) {
        // E.g. a value that cannot be stored: the call must still end.
        this.log.error("reporting failed", { attempt: att.key, error: e });
        // A value over the operator's blob limit fails the call for good; anything else may pass.
        const tooLarge = e instanceof BlobError && e.tooLarge;
        await this.api.failure(att.call, {
          attempt: att.attempt,
          error: { type: tooLarge ? "ValueTooLarge" : "ReportFailed", message: (e as Error).message },
          kind: tooLarge ? "user" : "infrastructure",
          retryable: !tooLarge,
        });
      } finally {
        this.book.forget(att);
      }
    });
  }

  private verdict(att: Attempt, r: Reply<unknown>): void {
    if (r.ok) return;
    if (r.verdict === "stale")
      this.log.info("the operator says the attempt is no longer current", { attempt: att.key, message: r.message });
    else if (r.verdict === "closed") this.log.warn("report not delivered: the sidecar stopped", { attempt: att.key });
    else
      this.log.error("the operator refused a report", {
        attempt: att.key,
        status: r.status,
        code: r.code,
        message: r.message,
      });
  }
}
