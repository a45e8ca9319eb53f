// The sidecar: registers with the operator once the worker has loaded the code, leases calls
// for the worker's free slots, relays what the worker says to the operator the moment it arrives,
// heartbeats both sides, and turns every way a worker can be lost into infrastructure failures.
// This file wires the parts; each idea lives in its own file:
//   worker-link.ts        the socket, handshake, framing and worker heartbeat (one Session per worker)
//   worker-parse.ts       every worker message checked against the protocol's schemas
//   worker-supervisor.ts  the worker's life: welcomed → registered, code load failure, lost
//   worker-inbox.ts       the worker's messages, one handler per type
//   leasing.ts            leases for free slots; calls held for a returning worker
//   dispatch.ts           attempts into the worker (assign, timeout backstop, cancel)
//   attempt-book.ts       the attempts held, their order of work, progress and metrics
//   reporter.ts           outcomes to the operator, retried until acknowledged
//   operator-heartbeat.ts the pod's heartbeat; the operator's cancellations
//   drain.ts              shutdown
import type { Logger } from "../../../protocol/index.js";
import { RuntimeApi } from "./api.js";
import { AttemptBook } from "./attempt-book.js";
import { Blobs } from "./blobs.js";
import type { SidecarConfig } from "./config.js";
import { Dispatcher } from "./dispatch.js";
import { drain } from "./drain.js";
import { GraphRelay } from "./graph-relay.js";
import { Leaser } from "./leasing.js";
import type { OperatorClient } from "./operator-client.js";
import { OperatorHeartbeat } from "./operator-heartbeat.js";
import { PodState } from "./pod-state.js";
import { Reporter } from "./reporter.js";
import { SpillDir } from "./spill.js";
import { WorkerInbox } from "./worker-inbox.js";
import { WorkerServer } from "./worker-link.js";
import { WorkerSupervisor } from "./worker-supervisor.js";

export interface SidecarDeps {
  config: SidecarConfig;
  client: OperatorClient;
  log: Logger;
  version: string;
}

export class Sidecar {
  readonly api: RuntimeApi;
  readonly blobs: Blobs;
  readonly server: WorkerServer;
  private readonly state = new PodState();
  private readonly book: AttemptBook;
  private readonly reporter: Reporter;
  private readonly leaser: Leaser;
  private readonly heartbeat: OperatorHeartbeat;

  constructor(private readonly deps: SidecarDeps) {
    const { config: cfg, log } = deps;
    const state = this.state;
    const api = (this.api = new RuntimeApi(deps.client));
    const blobs = (this.blobs = new Blobs(api));
    // Spilled values need the values directory on the volume the worker shares (PROTOCOL.md §4).
    if (cfg.valuesDir && cfg.spillThresholdBytes) blobs.spillDir = new SpillDir(cfg.valuesDir, cfg.spillThresholdBytes);
    const graph = new GraphRelay(api, blobs, log);
    const book = (this.book = new AttemptBook({
      progressIntervalMs: cfg.progressIntervalMs,
      changed: state.changed,
      log,
      sendProgress: (call, body) => {
        // Progress is superseded by the next update: a few tries, not forever.
        void api
          .progress(call, body, 3)
          .then((r) => r.ok || log.debug("progress not recorded", { call, code: r.code }));
      },
    }));
    const reporter = (this.reporter = new Reporter(api, blobs, book, log));
    const dispatcher = new Dispatcher({ state, book, blobs, reporter, graceMs: cfg.timeoutGraceMs, log });
    const inbox = new WorkerInbox({ api, blobs, book, reporter, graph, log });
    const supervisor = new WorkerSupervisor({
      cfg,
      version: deps.version,
      state,
      api,
      blobs,
      graph,
      book,
      reporter,
      inbox,
      log,
      connected: (link) => this.leaser.release(link),
      registered: () => {
        this.leaser.start();
        this.heartbeat.start();
      },
    });
    this.leaser = new Leaser({
      state,
      api,
      book,
      dispatcher,
      reporter,
      workerReturnMs: cfg.workerReturnMs,
      log,
      reregister: () => supervisor.reregister(),
    });
    this.heartbeat = new OperatorHeartbeat({ state, api, book, dispatcher, log });
    this.server = new WorkerServer(
      cfg.socket,
      supervisor,
      { intervalMs: cfg.workerHeartbeatMs, timeoutMs: cfg.workerHeartbeatTimeoutMs },
      log,
      blobs.spillDir ? { dir: blobs.spillDir.dir, threshold: blobs.spillDir.threshold } : undefined,
    );
  }

  /** Listens for the worker; leasing starts once it has registered. */
  async start(): Promise<void> {
    try {
      this.blobs.spillDir?.init(); // files an earlier run left
    } catch (e) {
      this.deps.log.warn("no values directory: large values stay inline", { error: e });
      this.blobs.spillDir = undefined;
      this.server.spillOffer = undefined;
    }
    await this.server.listen();
    this.deps.log.info("listening for the worker", { socket: this.deps.config.socket });
  }

  /** Attempts the worker is running (capacity in use). */
  get running(): number {
    return this.book.running;
  }

  get draining(): boolean {
    return this.state.draining;
  }

  /** User metrics of every attempt (the runtime API has no route for them): logged. */
  get metrics(): ReadonlyMap<string, number> {
    return this.book.metrics;
  }

  /** Stop leasing, let running calls finish until the deadline, report the rest, flush reports. */
  drain(deadlineSeconds = this.deps.config.drainDeadlineSeconds): Promise<void> {
    return drain(
      {
        state: this.state,
        book: this.book,
        leaser: this.leaser,
        heartbeat: this.heartbeat,
        reporter: this.reporter,
        log: this.deps.log,
        stop: () => this.stop(),
        stats: () => ({
          metrics: Object.fromEntries(this.book.metrics),
          operatorRequests: this.deps.client.stats,
          blobs: this.blobs.stats,
        }),
      },
      deadlineSeconds,
    );
  }

  stop(): void {
    const s = this.state;
    s.stopped = true;
    s.changed.notify();
    s.stopping.notify();
    this.server.close();
    s.link?.waiter.close();
    this.deps.client.close();
  }
}
