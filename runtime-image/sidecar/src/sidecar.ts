// The sidecar: registers with the operator once the worker has loaded the code, leases calls
// for the worker's free slots, relays what the worker says to the operator the moment it arrives,
// heartbeats both sides, and turns every way a worker can be lost into infrastructure failures.
import type { z } from "zod";
import type { Assignment, failureRequest, Logger } from "../../../protocol/index.js";
import { RuntimeApi } from "./api.js";
import { type Attempt, ProgressGate, SeqFinder, Serial, attemptKey, requestOf } from "./attempts.js";
import { GraphRelay } from "./graph-relay.js";
import { Blobs } from "./blobs.js";
import type { SidecarConfig } from "./config.js";
import type { WorkerMessage } from "./framing.js";
import type { OperatorClient, Reply } from "./operator-client.js";
import { type CallSpec, type WorkerError, failureFromWorker, functionTable } from "./translate.js";
import { hasBlob, toWorker, type WorkerForm } from "./values.js";
import type { Waiter } from "./waiter.js";
import { type Fatal, type Hello, type Session, WorkerServer } from "./worker-link.js";
import { handleState } from "./state.js";
import { Notifier } from "./notifier.js";

type Failure = z.input<typeof failureRequest>;

export interface SidecarDeps {
  config: SidecarConfig;
  client: OperatorClient;
  log: Logger;
  version: string;
}

/** One worker connection's state: its watches die with it. */
interface Link {
  session: Session;
  waiter: Waiter;
  registered: boolean;
}

export class Sidecar {
  readonly api: RuntimeApi;
  readonly blobs: Blobs;
  readonly server: WorkerServer;
  private readonly cfg: SidecarConfig;
  private readonly log: Logger;
  private readonly attempts = new Map<string, Attempt>();
  private readonly serial: Serial;
  private readonly progress: ProgressGate<{ current: number; total: number; message?: string }>;
  private readonly changed = new Notifier();
  private readonly stopping = new Notifier();
  private readonly graph: GraphRelay;
  /** User metrics of every attempt (the runtime API has no route for them): logged. */
  readonly metrics = new Map<string, number>();
  private link: Link | undefined;
  private capacity = 1;
  private settings = { heartbeatIntervalMs: 5_000, leaseWaitMs: 20_000 };
  private leasing = false;
  private heartbeating = false;
  private leaseInFlight = false;
  private readonly held: { att: Attempt; a: Assignment }[] = [];
  private holdTimer: NodeJS.Timeout | undefined;
  draining = false;
  private stopped = false;

  constructor(private readonly deps: SidecarDeps) {
    this.cfg = deps.config;
    this.log = deps.log;
    this.api = new RuntimeApi(deps.client);
    this.blobs = new Blobs(this.api);
    this.graph = new GraphRelay(this.api, this.blobs, this.log);
    this.serial = new Serial((key, e) =>
      this.log.error("relaying a worker message failed", { attempt: key, error: e }),
    );
    this.progress = new ProgressGate(this.cfg.progressIntervalMs, (call, body) => {
      // Progress is superseded by the next update: a few tries, not forever.
      void this.api
        .progress(call, body, 3)
        .then((r) => r.ok || this.log.debug("progress not recorded", { call, code: r.code }));
    });
    this.server = new WorkerServer(
      this.cfg.socket,
      {
        ready: (s, h) => this.onReady(s, h),
        fatal: (f) => this.onFatal(f),
        message: (s, m) => this.onMessage(s, m),
        lost: (s, why) => this.onLost(s, why),
      },
      { intervalMs: this.cfg.workerHeartbeatMs, timeoutMs: this.cfg.workerHeartbeatTimeoutMs },
      this.log,
    );
  }

  /** Listens for the worker; leasing starts once it has registered. */
  async start(): Promise<void> {
    await this.server.listen();
    this.log.info("listening for the worker", { socket: this.cfg.socket });
  }

  /** Attempts the worker is running (capacity in use). */
  get running(): number {
    let n = 0;
    for (const a of this.attempts.values()) if (a.state !== "reporting") n++;
    return n;
  }

  // -- the worker connection ----------------------------------------------------------------
  private onReady(session: Session, hello: Hello): void {
    this.link?.waiter.close();
    const waiter = this.graph.waiter(session, () => this.settings.leaseWaitMs);
    const link: Link = { session, waiter, registered: false };
    this.link = link;
    this.capacity =
      this.cfg.concurrency ?? (typeof hello.concurrency === "number" && hello.concurrency > 0 ? hello.concurrency : 1);
    const { functions, skipped } = functionTable(hello.functions);
    if (skipped.length) this.log.warn("functions the operator cannot address are left out of the table", { skipped });
    this.log.info("worker ready", {
      pid: hello.pid,
      sdk: hello.sdk,
      python: hello.python,
      functions: functions.length,
      capacity: this.capacity,
    });
    if (this.draining) {
      session.send({ type: "shutdown", drain: true, deadline: 0 });
      return;
    }
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    for (const { att, a } of this.held.splice(0)) if (att.state === "running") this.dispatch(att, a, link);
    void this.register(link, functions, hello);
  }

  /** Registers until the operator accepts (it may not know the pod yet after a restart). */
  private async register(
    link: Link,
    functions: ReturnType<typeof functionTable>["functions"],
    hello: Hello,
  ): Promise<void> {
    for (let refusals = 0; this.link === link && !this.stopped; refusals++) {
      const r = await this.api.register({
        function: this.cfg.function,
        capacity: this.capacity,
        functions,
        sidecarVersion: this.deps.version.slice(0, 64),
        ...(typeof hello.sdk === "string" ? { workerVersion: hello.sdk.slice(0, 64) } : {}),
      });
      if (r.ok) {
        this.settings = {
          heartbeatIntervalMs: this.cfg.heartbeatIntervalMs ?? r.body.heartbeatIntervalMs,
          leaseWaitMs: r.body.leaseWaitMs,
        };
        this.blobs.limit = r.body.inlineValueLimitBytes;
        if (this.link !== link) return;
        link.registered = true;
        this.log.info("registered", {
          capacity: this.capacity,
          ...this.settings,
          inlineValueLimitBytes: this.blobs.limit,
        });
        if (!this.leasing) void this.leaseLoop();
        if (!this.heartbeating) void this.heartbeatLoop();
        this.changed.notify();
        return;
      }
      if (r.verdict === "closed") return;
      this.log.error("the operator refused the registration, trying again", {
        status: r.status,
        code: r.code,
        message: r.message,
      });
      await this.stopping.wait(Math.min(30_000, 500 * 2 ** refusals));
    }
  }

  private onFatal(f: Fatal): void {
    const e = f.error ?? {};
    this.log.error("the worker could not load the code", { type: e.type, message: e.message });
    void this.api
      .codeLoadFailure({
        function: this.cfg.function,
        error: {
          type: (e.type || "Error").slice(0, 1024),
          message: (e.message ?? "").slice(0, 32768),
          ...(e.traceback ? { traceback: e.traceback.slice(-65536) } : {}),
          ...(e.module ? { module: e.module.slice(0, 1024) } : {}),
        },
        sidecarVersion: this.deps.version.slice(0, 64),
      })
      .then(
        (r) =>
          r.ok ||
          this.log.error("reporting the code load failure failed", {
            status: r.status,
            code: r.code,
            message: r.message,
          }),
      );
  }

  private onLost(session: Session, why: string): void {
    const link = this.link;
    if (link?.session !== session) return;
    this.link = undefined;
    link.waiter.close();
    this.log.error("worker lost", { why, running: this.running });
    for (const a of [...this.attempts.values()]) {
      if (a.state === "reporting") continue;
      if (a.state === "cancelling") {
        this.drop(a);
        continue;
      }
      this.fail(
        a,
        { type: "WorkerLost", message: `the worker was lost while running the call: ${why}` },
        "infrastructure",
      );
    }
    this.changed.notify();
  }

  // -- leasing --------------------------------------------------------------------------------
  private async leaseLoop(): Promise<void> {
    this.leasing = true;
    let refusals = 0;
    while (!this.draining && !this.stopped) {
      const free = this.capacity - this.running;
      if (!this.link?.registered || free <= 0) {
        await this.changed.wait();
        continue;
      }
      this.leaseInFlight = true;
      const r = await this.api.lease({ capacity: free, waitMs: this.settings.leaseWaitMs });
      this.leaseInFlight = false;
      this.changed.notify(); // a drain may be waiting for this lease
      if (!r.ok) {
        if (r.verdict === "closed") break;
        // E.g. the operator restarted and forgot this pod: register again, after a pause.
        this.log.error("lease refused", { status: r.status, code: r.code, message: r.message });
        await this.stopping.wait(Math.min(30_000, 500 * 2 ** refusals++));
        const link = this.link;
        if (link?.registered && link.session.hello) {
          link.registered = false;
          void this.register(link, functionTable(link.session.hello.functions).functions, link.session.hello);
        }
        continue;
      }
      refusals = 0;
      for (const a of r.body.assignments) this.begin(a);
      this.changed.notify();
    }
    this.leasing = false;
  }

  private begin(a: Assignment): void {
    const key = attemptKey(a.call, a.attempt);
    if (this.attempts.has(key)) {
      // Delivered twice (an answer lost and re-sent): it runs once.
      this.log.warn("ignoring an assignment this pod already has", { attempt: key });
      return;
    }
    const att: Attempt = {
      key,
      call: a.call,
      attempt: a.attempt,
      function: a.function,
      request: a.request,
      timeoutSeconds: a.timeoutSeconds,
      state: "running",
      startedAt: Date.now(),
      seq: new SeqFinder(a.request, a.call),
      metrics: new Map(),
    };
    this.attempts.set(key, att);
    if (this.draining) {
      this.fail(att, { type: "PodShutdown", message: "the pod is shutting down" }, "infrastructure");
      return;
    }
    const link = this.link;
    if (link) return this.dispatch(att, a, link);
    // A lease answered just after the worker was lost: keep the call for the restarted worker
    // rather than spend one of its infrastructure retries.
    this.held.push({ att, a });
    this.holdTimer ??= setTimeout(() => this.expireHeld("no worker connected in time"), this.cfg.workerReturnMs);
  }

  private expireHeld(why: string): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    for (const { att } of this.held.splice(0)) {
      this.fail(att, { type: "WorkerUnavailable", message: why }, "infrastructure");
    }
  }

  private dispatch(att: Attempt, a: Assignment, link: Link): void {
    att.timer = setTimeout(() => this.onTimeout(att), a.timeoutSeconds * 1000 + this.cfg.timeoutGraceMs);
    att.timer.unref();
    const inputs = [...a.args, ...Object.values(a.kwargs)];
    if (!inputs.some(hasBlob)) {
      // The common case goes out at once, in the order leased (before a later shutdown).
      let args, kwargs;
      try {
        args = a.args.map((v, i) => toWorker(v, `args[${i}]`));
        kwargs = Object.fromEntries(Object.entries(a.kwargs).map(([k, v]) => [k, toWorker(v, `kwargs.${k}`)]));
      } catch (e) {
        return this.fail(att, { type: "InputUnavailable", message: (e as Error).message }, "infrastructure");
      }
      return this.assign(att, a, link, args, kwargs);
    }
    void this.serial.run(att.key, async () => {
      let args, kwargs: Record<string, WorkerForm>;
      try {
        args = await Promise.all(a.args.map((v, i) => this.blobs.inbound(v, `args[${i}]`)));
        kwargs = {};
        for (const [k, v] of Object.entries(a.kwargs)) kwargs[k] = await this.blobs.inbound(v, `kwargs.${k}`);
      } catch (e) {
        return this.fail(att, { type: "InputUnavailable", message: (e as Error).message }, "infrastructure");
      }
      if (att.state !== "running") return;
      if (this.draining)
        return this.fail(att, { type: "PodShutdown", message: "the pod is shutting down" }, "infrastructure");
      this.assign(att, a, link, args, kwargs);
    });
  }

  private assign(
    att: Attempt,
    a: Assignment,
    link: Link,
    args: WorkerForm[],
    kwargs: Record<string, WorkerForm>,
  ): void {
    const sent = link.session.send({
      type: "assign",
      call: a.call,
      attempt: a.attempt,
      request: a.request,
      function: a.function,
      args,
      kwargs,
      headers: a.headers,
    });
    if (!sent) this.fail(att, { type: "WorkerLost", message: "the worker connection closed" }, "infrastructure");
  }

  // -- messages from the worker ---------------------------------------------------------------
  private onMessage(session: Session, msg: WorkerMessage): void {
    const link = this.link;
    if (!link || link.session !== session) return;
    const call = typeof msg.call === "string" ? msg.call : "";
    const attemptNo = typeof msg.attempt === "number" ? msg.attempt : 0;
    const key = attemptKey(call, attemptNo);
    const att = this.attempts.get(key);
    const live = att !== undefined && att.state !== "reporting";
    switch (msg.type) {
      case "calls":
        // Even for an attempt that is over: creation is idempotent and harmless.
        void this.serial.run(key, () =>
          this.graph.create(link.waiter, att?.seq, call, attemptNo, msg.calls as CallSpec[]),
        );
        return;
      case "watch":
        void this.serial.run(key, () =>
          link.waiter.watch(Array.isArray(msg.ids) ? (msg.ids as string[]) : [], att?.request ?? requestOf(call)),
        );
        return;
      case "result":
      case "tail":
      case "failure": {
        if (!live)
          return void this.log.info("ignoring a late message of an attempt that is over", {
            type: msg.type,
            attempt: key,
          });
        if (msg.type === "failure") {
          const f = failureFromWorker(attemptNo, (msg.error ?? {}) as WorkerError);
          return this.fail(att, f.error, f.kind, f.retryable);
        }
        this.finish(att);
        if (msg.type === "tail") {
          void this.report(att, () => this.api.tail(call, { attempt: attemptNo, tailCall: String(msg.target) }));
        } else {
          void this.report(att, async () =>
            this.api.result(call, {
              attempt: attemptNo,
              output: await this.blobs.outbound(msg.output, call, "output"),
            }),
          );
        }
        return;
      }
      case "cancelled":
        if (att?.state === "cancelling") this.drop(att);
        else if (live)
          this.fail(att, { type: "Cancelled", message: "the worker cancelled the attempt" }, "infrastructure");
        return;
      case "progress":
        if (live) {
          const body: { current: number; total: number; message?: string } = {
            current: Number(msg.current),
            total: Number(msg.total),
          };
          if (typeof msg.message === "string") body.message = msg.message.slice(0, 1024);
          this.progress.push(call, body);
        }
        return;
      case "metric":
        if (att && typeof msg.name === "string" && typeof msg.value === "number") {
          const name = `${String(msg.kind)}:${msg.name}`;
          att.metrics.set(name, (att.metrics.get(name) ?? 0) + msg.value);
          this.metrics.set(name, (this.metrics.get(name) ?? 0) + msg.value);
        }
        return;
      case "state_get":
      case "state_set":
        void handleState(this.api, this.blobs, link.session, msg, this.log);
        return;
      case "bye":
        this.log.info("the worker is exiting", { unfinished: msg.unfinished });
        return;
      default:
        this.log.warn("ignoring an unknown message from the worker", { type: msg.type });
    }
  }

  // -- the end of an attempt ------------------------------------------------------------------
  /** The attempt no longer uses a worker slot: lease more at once. */
  private finish(att: Attempt): void {
    if (att.timer) clearTimeout(att.timer);
    att.state = "reporting";
    this.progress.finish(att.call);
    if (att.metrics.size)
      this.log.info("metrics of the attempt", { attempt: att.key, metrics: Object.fromEntries(att.metrics) });
    this.changed.notify();
  }

  private drop(att: Attempt): void {
    this.finish(att);
    this.attempts.delete(att.key);
  }

  private fail(att: Attempt, error: Failure["error"], kind: Failure["kind"], retryable = true): void {
    if (att.state === "reporting") return;
    this.finish(att);
    void this.report(att, () => this.api.failure(att.call, { attempt: att.attempt, error, kind, retryable }));
  }

  /** Reports in the attempt's order; the attempt stays in heartbeats until the operator has it. */
  private report(att: Attempt, send: () => Promise<Reply<unknown>>): Promise<void> {
    return this.serial.run(att.key, async () => {
      try {
        const r = await send();
        if (!r.ok && r.verdict === "stale")
          this.log.info("the operator says the attempt is no longer current", { attempt: att.key, message: r.message });
        else if (!r.ok && r.verdict === "closed")
          this.log.warn("report not delivered: the sidecar stopped", { attempt: att.key });
        else if (!r.ok)
          this.log.error("the operator refused a report", {
            attempt: att.key,
            status: r.status,
            code: r.code,
            message: r.message,
          });
      } catch (e) {
        // E.g. a value that cannot be stored: the call must still end.
        this.log.error("reporting failed", { attempt: att.key, error: e });
        await this.api.failure(att.call, {
          attempt: att.attempt,
          error: { type: "ReportFailed", message: (e as Error).message },
          kind: "infrastructure",
          retryable: true,
        });
      } finally {
        this.attempts.delete(att.key);
      }
    });
  }

  private onTimeout(att: Attempt): void {
    if (att.state !== "running") return;
    this.log.warn("attempt ran past its timeout, stopping it", {
      attempt: att.key,
      timeoutSeconds: att.timeoutSeconds,
    });
    this.link?.session.send({ type: "cancel", call: att.call });
    this.fail(
      att,
      {
        type: "FunctionTimeout",
        message: `function ${att.function} timed out after ${att.timeoutSeconds}s (stopped by the sidecar)`,
      },
      "timeout",
    );
  }

  // -- heartbeats -----------------------------------------------------------------------------
  private async heartbeatLoop(): Promise<void> {
    this.heartbeating = true;
    while (!this.stopped) {
      await this.stopping.wait(this.settings.heartbeatIntervalMs);
      if (this.stopped) break;
      await this.beat();
    }
    this.heartbeating = false;
  }

  private async beat(): Promise<void> {
    const calls = [...this.attempts.values()].slice(0, 1000).map((a) => ({ call: a.call, attempt: a.attempt }));
    const r = await this.api.heartbeat({ calls, draining: this.draining });
    if (!r.ok) {
      if (r.verdict !== "closed")
        this.log.warn("heartbeat not acknowledged", { status: r.status, code: r.code, message: r.message });
      return;
    }
    for (const call of r.body.cancel) this.cancel(call);
  }

  /** The operator no longer wants the call (deleted request, or it went elsewhere). */
  private cancel(call: string): void {
    for (const a of this.attempts.values()) {
      if (a.call !== call || a.state !== "running") continue;
      this.log.info("cancelling at the operator's request", { attempt: a.key });
      if (a.timer) clearTimeout(a.timer);
      a.state = "cancelling";
      if (!this.link?.session.send({ type: "cancel", call })) this.drop(a);
    }
  }

  // -- shutdown -------------------------------------------------------------------------------
  /** Stop leasing, let running calls finish until the deadline, report the rest, flush reports. */
  async drain(deadlineSeconds = this.cfg.drainDeadlineSeconds): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const end = Date.now() + deadlineSeconds * 1000;
    this.log.info("draining", { running: this.running, deadlineSeconds });
    this.changed.notify();
    this.expireHeld("the pod is shutting down");
    void this.beat();
    // A new lease answers the parked one at once (the operator keeps one lease per pod); capacity
    // 0 takes nothing new, and anything it returns is given back as infrastructure failures.
    if (this.leaseInFlight) {
      void this.api.lease({ capacity: 0, waitMs: 0 }, 2).then((r) => {
        if (r.ok) for (const a of r.body.assignments) this.begin(a);
      });
    }
    this.link?.session.send({ type: "shutdown", drain: true, deadline: deadlineSeconds });
    while ((this.running > 0 || this.leaseInFlight) && Date.now() < end) await this.changed.wait(end - Date.now());
    for (const a of [...this.attempts.values()]) {
      if (a.state === "running")
        this.fail(a, { type: "PodShutdown", message: "the pod shut down before the call finished" }, "infrastructure");
      else if (a.state === "cancelling") this.drop(a);
    }
    // Reports are retried until acknowledged; the pod's grace period bounds this.
    await this.serial.idle();
    // The worker says bye and closes once its calls are over; closing first would make it exit 2.
    while (this.link && Date.now() < end) await this.changed.wait(end - Date.now());
    await this.beat();
    this.stop();
    this.log.info("drained", {
      metrics: Object.fromEntries(this.metrics),
      operatorRequests: this.deps.client.stats,
      blobs: this.blobs.stats,
    });
  }

  stop(): void {
    this.stopped = true;
    this.changed.notify();
    this.stopping.notify();
    this.server.close();
    this.link?.waiter.close();
    this.deps.client.close();
  }
}
