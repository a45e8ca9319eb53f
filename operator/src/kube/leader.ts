// Leader election on a coordination.k8s.io/v1 Lease (active/passive replicas).
//
// Rules (those of client-go's leaderelection):
// - a Lease held by another identity is taken only after it has not changed for its
//   leaseDurationSeconds, measured on OUR clock from when we saw the current version (so clock
//   skew between replicas does not matter); an empty holder may be taken at once;
// - every write is a compare-and-swap on resourceVersion, so two candidates never both win;
// - the leader renews every renewInterval; its leadership ends renewDeadline (< the lease
//   duration) after the last successful renew was SENT (not answered: the others count from the
//   version that write made), before anyone else may take over; a renew that finds another holder
//   stops leading at once;
// - once stopped, a renew answered late is ignored: leading again takes a fresh write (pure rules
//   in leader-state.ts);
// - fence() refuses writes outside our leadership (FencedError), even if a timer fires late;
// - release() clears the holder so that a standby takes over on its next retry.
import { isAlreadyExists, isConflict, isNotFound } from "./errors.js";
import type { Fence } from "./fence.js";
import {
  FOLLOWER,
  type LeaderState,
  type LeaseWriteAttempt,
  attemptAt,
  checkFence,
  deadlinePassed,
  holdConfirmed,
  steppedDown,
} from "./leader-state.js";
import { type Logger, silentLogger } from "../../../protocol/index.js";
import type { KubeObject } from "./types.js";
import type { KubeObjectWriter } from "./writer.js";

/** Defaults, documented here once. */
export const LEADER_DEFAULTS = {
  leaseDurationSeconds: 15,
  renewIntervalMs: 5_000,
  /** How often a standby checks the Lease; also the retry period of a failed renew. */
  retryIntervalMs: 2_000,
  /**
   * Leading ends this long after the last successful renew was sent: the lease duration minus a
   * 5 s margin for clock drift and writes in flight. Also the timeout of each Lease request.
   */
  renewDeadlineMs: 10_000,
} as const;

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}
export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

/** What we last saw of the Lease and when (our clock). */
export interface Observation {
  resourceVersion: string;
  holder: string;
  durationMs: number;
  observedAt: number;
}

export type LeaseDecision =
  | { action: "create" }
  | { action: "acquire" } // take over an empty or expired lease
  | { action: "renew" }
  | { action: "wait"; holder: string; expiresAt: number };

/** Pure: what to do with the Lease as read now, given what we saw of it before. */
export function decideLease(
  lease: Lease | undefined,
  identity: string,
  previous: Observation | undefined,
  now: number,
  defaultDurationMs: number,
): { decision: LeaseDecision; observation: Observation | undefined } {
  if (!lease) return { decision: { action: "create" }, observation: undefined };
  const rv = lease.metadata.resourceVersion ?? "";
  const holder = lease.spec?.holderIdentity ?? "";
  const durationMs = (lease.spec?.leaseDurationSeconds ?? defaultDurationMs / 1000) * 1000;
  const observation: Observation =
    previous && previous.resourceVersion === rv
      ? previous
      : { resourceVersion: rv, holder, durationMs, observedAt: now };
  if (holder === identity) return { decision: { action: "renew" }, observation };
  if (holder === "") return { decision: { action: "acquire" }, observation };
  const expiresAt = observation.observedAt + observation.durationMs;
  if (now >= expiresAt) return { decision: { action: "acquire" }, observation };
  return { decision: { action: "wait", holder, expiresAt }, observation };
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** The three requests the elector needs (KubeObjectWriter has them). */
export type LeaseWriter = Pick<KubeObjectWriter, "get" | "create" | "replace">;

export interface LeaderElectorOptions {
  writer: LeaseWriter;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewIntervalMs?: number;
  retryIntervalMs?: number;
  renewDeadlineMs?: number;
  onStartedLeading?: () => void;
  onStoppedLeading?: () => void;
  onNewLeader?: (identity: string) => void;
  log?: Logger;
  /** Deadlines are measured on this clock; the default does not jump when the wall clock is set. */
  now?: () => number;
}

const monotonicNow = () => performance.timeOrigin + performance.now();

export class LeaderElector {
  private state: LeaderState = FOLLOWER;
  private stopped = false;
  private observation: Observation | undefined;
  private lastWritten: Lease | undefined; // our own last successful write, renewed without a GET
  private deadlineTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private loopDone: Promise<void> | undefined;
  private knownLeader = "";
  private readonly o: Required<Omit<LeaderElectorOptions, "onStartedLeading" | "onStoppedLeading" | "onNewLeader">> &
    Pick<LeaderElectorOptions, "onStartedLeading" | "onStoppedLeading" | "onNewLeader">;

  constructor(opts: LeaderElectorOptions) {
    this.o = {
      leaseDurationSeconds: LEADER_DEFAULTS.leaseDurationSeconds,
      renewIntervalMs: LEADER_DEFAULTS.renewIntervalMs,
      retryIntervalMs: LEADER_DEFAULTS.retryIntervalMs,
      renewDeadlineMs: LEADER_DEFAULTS.renewDeadlineMs,
      log: silentLogger,
      now: monotonicNow,
      ...opts,
    };
    if (!opts.identity) throw new Error("leader election identity: must not be empty");
    if (!(this.o.renewDeadlineMs < this.o.leaseDurationSeconds * 1000)) {
      throw new Error("leader election renewDeadlineMs: must be shorter than leaseDurationSeconds");
    }
    if (!(this.o.renewIntervalMs < this.o.renewDeadlineMs)) {
      throw new Error("leader election renewIntervalMs: must be shorter than renewDeadlineMs");
    }
  }

  isLeader(): boolean {
    return this.state.leading;
  }

  /** Identity of the holder as last seen ("" if none). */
  leader(): string {
    return this.knownLeader;
  }

  /**
   * The write fence: throws FencedError unless this replica leads and its last renew (counted
   * from when it was sent) still covers now. Checked on the clock, so a late timer cannot let a
   * former leader write.
   */
  readonly fence: Fence = (what) => checkFence(this.state, this.o.now(), what);

  /** Runs the election loop in the background until stop(). */
  start(): void {
    this.loopDone ??= this.loop();
  }

  /** Stops campaigning; a leader releases the Lease so that a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loopDone;
    // The last round may have won the lease just before stop(): release whatever we hold.
    if (this.lastWritten) await this.release();
    this.stepDown("released");
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let held: LeaseWriteAttempt | undefined;
      try {
        held = await this.tryAcquireOrRenew();
      } catch (e) {
        this.o.log.warn("lease update failed", { lease: this.o.name, err: e });
      }
      if (this.stopped) break;
      if (held) this.confirmed(held);
      else if (deadlinePassed(this.state, this.o.now())) this.stepDown("renew deadline passed");
      await this.sleep(this.state.leading && held ? this.o.renewIntervalMs : this.o.retryIntervalMs);
    }
  }

  /** A write that holds the Lease for us was answered: start, extend, or ignore it if late. */
  private confirmed(held: LeaseWriteAttempt): void {
    const { state, event } = holdConfirmed(this.state, held, this.o.now(), this.o.renewDeadlineMs);
    if (event === "expired") return this.stepDown("renew answered after the deadline");
    if (event === "ignored") {
      this.o.log.info("lease write answered too late to lead on: ignored", { lease: this.o.name });
      return;
    }
    this.state = state;
    this.armDeadline();
    if (event === "started") {
      this.o.log.info("started leading", { lease: this.o.name, identity: this.o.identity, term: state.term });
      this.callback("onStartedLeading", this.o.onStartedLeading);
    }
  }

  /** One attempt; what we were when the write that holds the Lease was sent, if one succeeded. */
  private async tryAcquireOrRenew(): Promise<LeaseWriteAttempt | undefined> {
    if (this.state.leading && this.lastWritten) {
      const sent = attemptAt(this.state, this.o.now());
      if (await this.renewOwn(this.lastWritten, sent.sentAt)) return sent;
    }
    const lease = await this.readLease();
    const now = this.o.now();
    const { decision, observation } = decideLease(
      lease,
      this.o.identity,
      this.observation,
      now,
      this.o.leaseDurationSeconds * 1000,
    );
    this.observation = observation;
    this.noteLeader(lease?.spec?.holderIdentity ?? "");
    if (decision.action === "wait") {
      if (this.state.leading) this.stepDown(`lease taken by ${decision.holder}`);
      return undefined;
    }
    const sent = attemptAt(this.state, now);
    if (!(await this.tryWrite(decision.action, lease, now))) return undefined;
    this.noteLeader(this.o.identity);
    return sent;
  }

  /** Every Lease request gives up at the renew deadline: a later answer could not be used. */
  private get reqOpts() {
    return { timeoutMs: this.o.renewDeadlineMs };
  }

  /** The Lease, or undefined when none exists yet. */
  private async readLease(): Promise<Lease | undefined> {
    try {
      return await this.o.writer.get<Lease>(this.ref(), this.reqOpts);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      return undefined;
    }
  }

  /** Writes the Lease as decided; false when another candidate won this round. */
  private async tryWrite(
    action: "create" | "acquire" | "renew",
    lease: Lease | undefined,
    now: number,
  ): Promise<boolean> {
    try {
      this.lastWritten = await this.write(action, lease, now);
      return true;
    } catch (e) {
      if (isConflict(e) || isAlreadyExists(e)) return false; // compare-and-swap lost: not an error
      throw e;
    }
  }

  private ref() {
    return { apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace: this.o.namespace, name: this.o.name };
  }

  /** Renews the Lease we wrote last; false when someone else wrote it since (read it and decide). */
  private async renewOwn(last: Lease, now: number): Promise<boolean> {
    try {
      this.lastWritten = await this.o.writer.replace<Lease>(this.renewed(last, now), this.reqOpts);
      return true;
    } catch (e) {
      if (!isConflict(e) && !isNotFound(e)) throw e;
      this.lastWritten = undefined;
      return false;
    }
  }

  /** Creates, takes over or renews the Lease as decided. */
  private write(action: "create" | "acquire" | "renew", lease: Lease | undefined, now: number): Promise<Lease> {
    if (action === "create")
      return this.o.writer.create<Lease>(
        {
          ...this.ref(),
          metadata: { namespace: this.o.namespace, name: this.o.name },
          spec: this.spec(now, now, 0),
        },
        this.reqOpts,
      );
    if (action === "acquire") {
      const transitions = (lease!.spec?.leaseTransitions ?? 0) + 1;
      return this.o.writer.replace<Lease>({ ...lease!, spec: this.spec(now, now, transitions) }, this.reqOpts);
    }
    return this.o.writer.replace<Lease>(this.renewed(lease!, now), this.reqOpts);
  }

  private spec(acquire: number, renew: number, transitions: number): LeaseSpec {
    return {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: this.o.leaseDurationSeconds,
      acquireTime: microTime(acquire),
      renewTime: microTime(renew),
      leaseTransitions: transitions,
    };
  }

  private renewed(lease: Lease, now: number): Lease {
    return { ...lease, spec: { ...lease.spec, holderIdentity: this.o.identity, renewTime: microTime(now) } };
  }

  private async release(): Promise<void> {
    if (!this.lastWritten) return;
    try {
      await this.o.writer.replace<Lease>(
        {
          ...this.lastWritten,
          spec: {
            ...this.lastWritten.spec,
            holderIdentity: "",
            leaseDurationSeconds: 1,
            renewTime: microTime(this.o.now()),
          },
        },
        this.reqOpts,
      );
    } catch (e) {
      this.o.log.warn("releasing the lease failed; a standby takes over when it expires", { err: e });
    }
    this.lastWritten = undefined;
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    // Fires even if a renew request hangs: leadership must end before the lease can expire.
    const fire = () => {
      if (deadlinePassed(this.state, this.o.now())) this.stepDown("renew deadline passed");
      else if (this.state.leading) this.armDeadline(); // fired early (timer granularity)
    };
    this.deadlineTimer = setTimeout(fire, Math.max(0, this.state.leadUntil - this.o.now()));
    this.deadlineTimer.unref?.();
  }

  private stepDown(why: string): void {
    clearTimeout(this.deadlineTimer);
    if (!this.state.leading) return;
    this.state = steppedDown(this.state);
    this.lastWritten = undefined;
    this.o.log.warn("stopped leading", { lease: this.o.name, identity: this.o.identity, why });
    this.callback("onStoppedLeading", this.o.onStoppedLeading);
  }

  private noteLeader(holder: string): void {
    if (holder === this.knownLeader) return;
    this.knownLeader = holder;
    if (holder) this.callback("onNewLeader", () => this.o.onNewLeader?.(holder));
  }

  /** A throwing callback must not end the election loop. */
  private callback(name: string, fn: (() => void) | undefined): void {
    try {
      fn?.();
    } catch (e) {
      this.o.log.error("leader election callback threw", { callback: name, err: e });
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped) return resolve();
      const done = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
