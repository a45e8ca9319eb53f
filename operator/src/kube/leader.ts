// Leader election on a coordination.k8s.io/v1 Lease (active/passive replicas).
//
// Rules (those of client-go's leaderelection):
// - a Lease held by another identity is taken only after it has not changed for its
//   leaseDurationSeconds, measured on OUR clock from when we saw the current version (so clock
//   skew between replicas does not matter); an empty holder may be taken at once;
// - every write is a compare-and-swap on resourceVersion, so two candidates never both win;
// - the leader renews every renewInterval; if it cannot renew for renewDeadline (< the lease
//   duration) it stops leading before anyone else may take over; a renew that finds another
//   holder stops leading at once;
// - release() clears the holder so that a standby takes over on its next retry.
import { isAlreadyExists, isConflict, isNotFound } from "./errors.js";
import { type Logger, silentLogger } from "../../../protocol/index.js";
import type { KubeObject } from "./types.js";
import type { KubeObjectWriter } from "./writer.js";

/** Defaults, documented here once. */
export const LEADER_DEFAULTS = {
  leaseDurationSeconds: 15,
  renewIntervalMs: 5_000,
  /** How often a standby checks the Lease; also the retry period of a failed renew. */
  retryIntervalMs: 2_000,
  /** A leader that has not renewed for this long stops leading (must be < lease duration). */
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

/** The three writes the elector needs (KubeObjectWriter has them). */
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
  now?: () => number;
}

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private observation: Observation | undefined;
  private lastWritten: Lease | undefined; // our own last successful write, renewed without a GET
  private lastRenewAt = 0;
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
      now: Date.now,
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
    return this.leading;
  }

  /** Identity of the holder as last seen ("" if none). */
  leader(): string {
    return this.knownLeader;
  }

  /** Runs the election loop in the background until stop(). */
  start(): void {
    this.loopDone ??= this.loop();
  }

  /** Stops campaigning; a leader releases the Lease so that a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loopDone;
    clearTimeout(this.deadlineTimer);
    // The last round may have won the lease just before stop(): release whatever we hold.
    if (this.lastWritten) await this.release();
    this.stepDown("released");
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew();
      } catch (e) {
        this.o.log.warn("lease update failed", { lease: this.o.name, err: e });
      }
      if (this.stopped) break;
      if (ok) {
        this.lastRenewAt = this.o.now();
        this.armDeadline();
        if (!this.leading) {
          this.leading = true;
          this.o.log.info("started leading", { lease: this.o.name, identity: this.o.identity });
          this.callback("onStartedLeading", this.o.onStartedLeading);
        }
      } else if (this.leading && this.o.now() - this.lastRenewAt >= this.o.renewDeadlineMs) {
        this.stepDown("renew deadline passed");
      }
      await this.sleep(this.leading && ok ? this.o.renewIntervalMs : this.o.retryIntervalMs);
    }
  }

  /** One attempt; true when we hold the Lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.o.now();
    if (this.leading && this.lastWritten && (await this.renewOwn(this.lastWritten, now))) return true;
    const lease = await this.readLease();
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
      if (this.leading) this.stepDown(`lease taken by ${decision.holder}`);
      return false;
    }
    if (!(await this.tryWrite(decision.action, lease, now))) return false;
    this.noteLeader(this.o.identity);
    return true;
  }

  /** The Lease, or undefined when none exists yet. */
  private async readLease(): Promise<Lease | undefined> {
    try {
      return await this.o.writer.get<Lease>(this.ref());
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
      this.lastWritten = await this.o.writer.replace<Lease>(this.renewed(last, now));
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
      return this.o.writer.create<Lease>({
        ...this.ref(),
        metadata: { namespace: this.o.namespace, name: this.o.name },
        spec: this.spec(now, now, 0),
      });
    if (action === "acquire") {
      const transitions = (lease!.spec?.leaseTransitions ?? 0) + 1;
      return this.o.writer.replace<Lease>({ ...lease!, spec: this.spec(now, now, transitions) });
    }
    return this.o.writer.replace<Lease>(this.renewed(lease!, now));
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
      await this.o.writer.replace<Lease>({
        ...this.lastWritten,
        spec: {
          ...this.lastWritten.spec,
          holderIdentity: "",
          leaseDurationSeconds: 1,
          renewTime: microTime(this.o.now()),
        },
      });
    } catch (e) {
      this.o.log.warn("releasing the lease failed; a standby takes over when it expires", { err: e });
    }
    this.lastWritten = undefined;
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    // Fires even if a renew request hangs: leadership must end before the lease can expire.
    this.deadlineTimer = setTimeout(() => {
      if (this.leading && this.o.now() - this.lastRenewAt >= this.o.renewDeadlineMs - 1) {
        this.stepDown("renew deadline passed");
      }
    }, this.o.renewDeadlineMs);
    this.deadlineTimer.unref?.();
  }

  private stepDown(why: string): void {
    clearTimeout(this.deadlineTimer);
    if (!this.leading) return;
    this.leading = false;
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
