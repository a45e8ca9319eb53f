// Fencing: a replica that no longer holds the leader Lease must not write. The writer consults a
// Fence before every mutating request; a former leader gets a FencedError instead of a write that
// could race the new leader's.

/** Throws FencedError when this replica may not write now; `what` names the write, e.g. "create Pod ns/x". */
export type Fence = (what: string) => void;

/** For writers that act on a caller's behalf and not as the leader (and when election is off). */
export const openFence: Fence = () => {};

/**
 * A write refused because this replica is not (or no longer) the leader. Permanent for this
 * process: retrying cannot help, the replica that holds the Lease does the work.
 */
export class FencedError extends Error {
  override readonly name = "FencedError";
  constructor(
    readonly what: string,
    readonly reason: string,
  ) {
    super(`${what}: refused, this replica is not the leader (${reason}); the replica holding the Lease writes`);
  }
}

export const isFenced = (e: unknown): e is FencedError => e instanceof FencedError;
