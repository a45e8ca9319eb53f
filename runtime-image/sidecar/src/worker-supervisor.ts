// The worker's life as the sidecar sees it (the Session's handlers): welcomed → a new link, the
// pod's capacity, and a registration with the operator retried until accepted; its code failing
// to load → reported; lost (closed, crashed, hung or replaced) → every attempt it was running is
// given back as infrastructure loss. The worker container restarts; the next one gets a new link.
import type { z } from "zod";
import type { Logger, registerResponse, WorkerToSidecar } from "../../../protocol/index.js";
import type { RuntimeApi } from "./api.js";
import type { AttemptBook } from "./attempt-book.js";
import type { Blobs } from "./blobs.js";
import type { SidecarConfig } from "./config.js";
import type { WorkerMessage } from "./framing.js";
import type { GraphRelay } from "./graph-relay.js";
import type { Link, PodState } from "./pod-state.js";
import type { Reporter } from "./reporter.js";
import { functionTable } from "./translate.js";
import type { WorkerInbox } from "./worker-inbox.js";
import type { Fatal, Hello, Session, SessionHandlers } from "./worker-link.js";

export interface SupervisorDeps {
  cfg: Pick<SidecarConfig, "function" | "concurrency" | "heartbeatIntervalMs">;
  version: string;
  state: PodState;
  api: Pick<RuntimeApi, "register" | "codeLoadFailure">;
  blobs: Pick<Blobs, "limit" | "direct" | "spillDir">;
  graph: Pick<GraphRelay, "waiter">;
  book: AttemptBook;
  reporter: Pick<Reporter, "fail">;
  inbox: Pick<WorkerInbox, "handle" | "invalid">;
  log: Logger;
  /** A worker was welcomed while the pod serves: it gets what was held for it. */
  connected(link: Link): void;
  /** The operator accepted a registration: lease and heartbeat. */
  registered(): void;
}

export class WorkerSupervisor implements SessionHandlers {
  constructor(private readonly d: SupervisorDeps) {}

  ready(session: Session, hello: Hello): void {
    const s = this.d.state;
    s.link?.waiter.close();
    const link: Link = {
      session,
      waiter: this.d.graph.waiter(session, () => s.settings.leaseWaitMs),
      registered: false,
    };
    s.link = link;
    s.capacity = this.d.cfg.concurrency ?? hello.concurrency;
    const { functions, skipped } = functionTable(hello.functions);
    if (skipped.length) this.d.log.warn("functions the operator cannot address are left out of the table", { skipped });
    this.d.log.info("worker ready", {
      pid: hello.pid,
      sdk: hello.sdk,
      python: hello.python,
      functions: functions.length,
      capacity: s.capacity,
    });
    if (s.draining) {
      session.send({ type: "shutdown", drain: true, deadline: 0 });
      return;
    }
    this.d.connected(link);
    void this.register(link, hello);
  }

  fatal(f: Fatal): void {
    const e = f.error;
    this.d.log.error("the worker could not load the code", { type: e.type, message: e.message });
    void this.d.api
      .codeLoadFailure({
        function: this.d.cfg.function,
        error: {
          type: (e.type || "Error").slice(0, 1024),
          message: e.message.slice(0, 32768),
          ...(e.traceback ? { traceback: e.traceback.slice(-65536) } : {}),
          ...(e.module ? { module: e.module.slice(0, 1024) } : {}),
        },
        sidecarVersion: this.d.version.slice(0, 64),
      })
      .then(
        (r) =>
          r.ok ||
          this.d.log.error("reporting the code load failure failed", {
            status: r.status,
            code: r.code,
            message: r.message,
          }),
      );
  }

  message(session: Session, msg: WorkerToSidecar): void {
    const link = this.linkOf(session);
    // The function table and capacity were registered once: a second hello cannot change them.
    if (msg.type === "hello") this.d.log.warn("ignoring a hello after the handshake", { session: session.id });
    if (!link || msg.type === "hello" || msg.type === "fatal" || msg.type === "heartbeat_ack") return;
    this.d.inbox.handle(link, msg);
  }

  invalid(session: Session, raw: WorkerMessage, problems: string[]): void {
    const link = this.linkOf(session);
    if (link) this.d.inbox.invalid(link, raw, problems);
  }

  lost(session: Session, why: string): void {
    const s = this.d.state;
    const link = this.linkOf(session);
    if (!link) return;
    s.link = undefined;
    link.waiter.close();
    // Spill files of this worker that nobody will read or upload now.
    const dir = this.d.blobs.spillDir;
    for (const path of session.spillFiles) dir?.remove(path);
    session.spillFiles.clear();
    if (session.hello) dir?.removeWorkerFiles(session.hello.pid);
    this.d.log.error("worker lost", { why, running: this.d.book.running });
    for (const a of this.d.book.all()) {
      if (a.state === "reporting") continue;
      if (a.state === "cancelling") {
        this.d.book.drop(a);
        continue;
      }
      this.d.reporter.fail(
        a,
        { type: "WorkerLost", message: `the worker was lost while running the call: ${why}` },
        "infrastructure",
      );
    }
    s.changed.notify();
  }

  /** The operator forgot the pod (it refused a lease): register the current worker again. */
  reregister(): void {
    const link = this.d.state.link;
    if (!link?.registered || !link.session.hello) return;
    link.registered = false;
    void this.register(link, link.session.hello);
  }

  private linkOf(session: Session): Link | undefined {
    const link = this.d.state.link;
    return link?.session === session ? link : undefined;
  }

  /** Registers until the operator accepts (it may not know the pod yet after a restart). */
  private async register(link: Link, hello: Hello): Promise<void> {
    const s = this.d.state;
    const body = {
      function: this.d.cfg.function,
      capacity: s.capacity,
      functions: functionTable(hello.functions).functions,
      sidecarVersion: this.d.version.slice(0, 64),
      workerVersion: hello.sdk.slice(0, 64),
    };
    for (let refusals = 0; s.link === link && !s.stopped; refusals++) {
      const r = await this.d.api.register(body);
      if (r.ok) return this.accepted(link, r.body);
      if (r.verdict === "closed") return;
      this.d.log.error("the operator refused the registration, trying again", {
        status: r.status,
        code: r.code,
        message: r.message,
      });
      await s.stopping.wait(Math.min(30_000, 500 * 2 ** refusals));
    }
  }

  private accepted(link: Link, answer: z.infer<typeof registerResponse>): void {
    const s = this.d.state;
    s.settings = {
      heartbeatIntervalMs: this.d.cfg.heartbeatIntervalMs ?? answer.heartbeatIntervalMs,
      leaseWaitMs: answer.leaseWaitMs,
    };
    this.d.blobs.limit = answer.inlineValueLimitBytes;
    this.d.blobs.direct = answer.directBlobs;
    if (s.link !== link) return;
    link.registered = true;
    this.d.log.info("registered", {
      capacity: s.capacity,
      ...s.settings,
      inlineValueLimitBytes: answer.inlineValueLimitBytes,
    });
    this.d.registered();
    s.changed.notify();
  }
}
