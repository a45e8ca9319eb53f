// The leader's state as pure data: when it leads, until when, and how a Lease write's answer
// changes that. Every deadline counts from when the write was SENT: the server stamped the Lease
// no earlier than that, so the others may take over from sentAt + leaseDuration on; we stop at
// sentAt + renewDeadline (renewDeadline = leaseDuration − a safety margin for clock drift and
// writes still in flight).
import { FencedError } from "./fence.js";

export interface LeaderState {
  readonly leading: boolean;
  /** Incremented each time we start leading; a renew only extends the term it was sent in. */
  readonly term: number;
  /** When the write that last confirmed our hold was sent (our clock). */
  readonly renewSentAt: number;
  /** Leading (and writing) ends here: renewSentAt + renewDeadline. */
  readonly leadUntil: number;
}

export const FOLLOWER: LeaderState = { leading: false, term: 0, renewSentAt: 0, leadUntil: 0 };

/** What we were when a Lease write was sent. */
export interface LeaseWriteAttempt {
  readonly term: number;
  readonly leading: boolean;
  readonly sentAt: number;
}

export const attemptAt = (s: LeaderState, sentAt: number): LeaseWriteAttempt => ({
  term: s.term,
  leading: s.leading,
  sentAt,
});

export type HoldEvent = "started" | "renewed" | "expired" | "ignored";

/**
 * A Lease write that makes us the holder succeeded; `now` is when its answer arrived.
 * - a renew extends only the term it was sent in, and only if that term's deadline has not passed
 *   (otherwise we should have stopped already: stop now, "expired");
 * - an answer for a term that already ended (we stepped down meanwhile) is ignored: leading again
 *   takes a fresh write through the ordinary acquire path;
 * - a write sent as a follower starts a new term, unless its answer came too late to lead on.
 */
export function holdConfirmed(
  s: LeaderState,
  a: LeaseWriteAttempt,
  now: number,
  renewDeadlineMs: number,
): { state: LeaderState; event: HoldEvent } {
  if (a.leading) {
    if (!s.leading || s.term !== a.term) return { state: s, event: "ignored" };
    if (now >= s.leadUntil) return { state: { ...s, leading: false }, event: "expired" };
    const sentAt = Math.max(s.renewSentAt, a.sentAt);
    return { state: { ...s, renewSentAt: sentAt, leadUntil: sentAt + renewDeadlineMs }, event: "renewed" };
  }
  if (s.leading || s.term !== a.term) return { state: s, event: "ignored" };
  const leadUntil = a.sentAt + renewDeadlineMs;
  if (now >= leadUntil) return { state: s, event: "ignored" };
  return { state: { leading: true, term: s.term + 1, renewSentAt: a.sentAt, leadUntil }, event: "started" };
}

export const deadlinePassed = (s: LeaderState, now: number): boolean => s.leading && now >= s.leadUntil;

export const steppedDown = (s: LeaderState): LeaderState => (s.leading ? { ...s, leading: false } : s);

/** Why this replica may not write now, or undefined when it may. */
export function fenceReason(s: LeaderState, now: number): string | undefined {
  if (s.leading && now < s.leadUntil) return undefined;
  if (s.term === 0) return "it has not led";
  if (s.leading)
    return `its last renew, sent at ${new Date(s.renewSentAt).toISOString()}, covers writes only until ${new Date(s.leadUntil).toISOString()}`;
  return "it stepped down";
}

/** The fence of a replica in state `s`: throws FencedError unless it leads at `now`. */
export function checkFence(s: LeaderState, now: number, what: string): void {
  const reason = fenceReason(s, now);
  if (reason) throw new FencedError(what, reason);
}
