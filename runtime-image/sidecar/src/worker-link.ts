// The worker side: a Unix socket server (PROTOCOL.md §1-3). One worker connection at a time; a
// new connection replaces the old one (the worker container was restarted). Each connection is
// a Session: handshake, framing, checking every message at the boundary (worker-parse.ts), and
// the sidecar → worker heartbeat that detects a hung worker.
import { mkdirSync, rmSync } from "node:fs";
import net from "node:net";
import { dirname } from "node:path";
import { WORKER_PROTOCOL_VERSION, type Logger, type WorkerToSidecar } from "../../../protocol/index.js";
import { FrameDecoder, encodeFrame, type WorkerMessage } from "./framing.js";
import { type Fatal, type Hello, parseFatal, parseHello, parseWorkerMessage } from "./worker-parse.js";

export const PROTOCOL_VERSION = WORKER_PROTOCOL_VERSION;
export type { Fatal, Hello };

export interface SessionHandlers {
  /** The worker loaded its code and was welcomed. */
  ready(session: Session, hello: Hello): void;
  /** The worker could not load the code (it exits 3 next). */
  fatal(fatal: Fatal): void;
  /** Every checked message after the handshake, in order (heartbeat answers stay here). */
  message(session: Session, msg: WorkerToSidecar): void;
  /** A message after the handshake that breaks the protocol's rules (already logged). */
  invalid(session: Session, raw: WorkerMessage, problems: string[]): void;
  /** The connection is gone (closed, broken, hung or replaced); only after `ready`. */
  lost(session: Session, why: string): void;
}

export interface HeartbeatSettings {
  intervalMs: number;
  timeoutMs: number;
}

/** What welcome offers a worker that announced hello.spill (PROTOCOL.md §3-4). */
export interface SpillOffer {
  dir: string;
  threshold: number;
}

let sessionIds = 0;

export class Session {
  readonly id = ++sessionIds;
  private decoder = new FrameDecoder();
  private state: "handshake" | "ready" | "closed" = "handshake";
  private seq = 0;
  private lastAck = Date.now();
  private beat: NodeJS.Timeout | undefined;
  hello: Hello | undefined;
  /** From the last heartbeat_ack: sync attempts the worker could not stop. */
  abandoned = 0;
  /** Both sides agreed on spilled values: large values go to this worker as files. */
  spill = false;
  /** Spill files handed to this worker; what it did not remove is removed when the session ends. */
  readonly spillFiles = new Set<string>();

  constructor(
    private readonly socket: net.Socket,
    private readonly handlers: SessionHandlers,
    private readonly heartbeat: HeartbeatSettings,
    private readonly log: Logger,
    private readonly spillOffer?: SpillOffer,
  ) {
    socket.setNoDelay?.(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (e) => this.close(`socket error: ${e.message}`));
    socket.on("close", () => this.close("the worker closed the connection"));
  }

  get ready(): boolean {
    return this.state === "ready";
  }

  send(msg: WorkerMessage): boolean {
    if (this.state === "closed") return false;
    try {
      this.socket.write(encodeFrame(msg));
      return true;
    } catch (e) {
      this.log.error("cannot send to the worker", { type: msg.type, error: e });
      return false;
    }
  }

  /** Ends the session (idempotent); `lost` is reported once if the handshake had completed. */
  close(why: string): void {
    if (this.state === "closed") return;
    const wasReady = this.state === "ready";
    this.state = "closed";
    if (this.beat) clearInterval(this.beat);
    this.socket.destroy();
    if (wasReady) this.handlers.lost(this, why);
  }

  private onData(chunk: Buffer): void {
    let messages: WorkerMessage[];
    try {
      messages = this.decoder.push(chunk);
    } catch (e) {
      this.log.error("protocol error from the worker, closing the connection", { error: e });
      this.close(`protocol error: ${(e as Error).message}`);
      return;
    }
    for (const msg of messages) {
      if (this.state === "closed") return;
      if (this.state === "handshake") this.onHandshake(msg);
      else this.onMessage(msg);
    }
  }

  private onMessage(raw: WorkerMessage): void {
    const parsed = parseWorkerMessage(raw);
    if (parsed.kind === "unknown") {
      this.log.warn("ignoring an unknown message from the worker", { type: parsed.type });
    } else if (parsed.kind === "invalid") {
      if (raw.type === "heartbeat_ack") this.lastAck = Date.now(); // late or odd, but alive
      this.log.error("invalid message from the worker", { type: parsed.type, problems: parsed.problems });
      this.handlers.invalid(this, raw, parsed.problems);
    } else if (parsed.msg.type === "heartbeat_ack") {
      this.lastAck = Date.now();
      this.abandoned = parsed.msg.abandoned;
    } else this.handlers.message(this, parsed.msg);
  }

  private onHandshake(msg: WorkerMessage): void {
    if (msg.type === "fatal") {
      const { fatal, problems } = parseFatal(msg);
      if (problems.length) this.log.warn("the worker's fatal message is invalid", { problems });
      this.handlers.fatal(fatal);
      this.close("the worker could not load the code");
      return;
    }
    if (msg.type !== "hello") {
      this.log.warn("ignoring a message before hello", { type: msg.type });
      return;
    }
    if (msg.protocol !== PROTOCOL_VERSION) {
      this.log.error("the worker speaks another protocol version", { protocol: msg.protocol, want: PROTOCOL_VERSION });
      this.send({ type: "shutdown", drain: false, deadline: 0 });
      return;
    }
    const { hello, problems } = parseHello(msg);
    if (!hello) {
      this.log.error("the worker's hello is invalid, shutting it down", { problems });
      this.send({ type: "shutdown", drain: false, deadline: 0 });
      return;
    }
    if (problems.length)
      this.log.warn("functions of the worker's table that break the protocol are left out", { problems });
    this.hello = hello;
    this.spill = hello.spill === true && this.spillOffer !== undefined;
    this.send({ type: "welcome", protocol: PROTOCOL_VERSION, ...(this.spill ? { spill: this.spillOffer } : {}) });
    this.state = "ready";
    this.lastAck = Date.now();
    this.beat = setInterval(() => this.tick(), this.heartbeat.intervalMs);
    this.handlers.ready(this, hello);
  }

  private tick(): void {
    if (Date.now() - this.lastAck > this.heartbeat.timeoutMs) {
      this.log.error("the worker stopped answering heartbeats", { silentMs: Date.now() - this.lastAck });
      this.close(`no heartbeat answer for ${this.heartbeat.timeoutMs} ms`);
      return;
    }
    this.send({ type: "heartbeat", seq: ++this.seq });
  }
}

/** Listens on the socket path; hands each connection to a new Session. */
export class WorkerServer {
  private server: net.Server | undefined;
  private current: Session | undefined;

  constructor(
    private readonly path: string,
    private readonly handlers: SessionHandlers,
    private readonly heartbeat: HeartbeatSettings,
    private readonly log: Logger,
    /** Cleared when the values directory cannot be used. */
    public spillOffer?: SpillOffer,
  ) {}

  get session(): Session | undefined {
    return this.current;
  }

  listen(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true });
    rmSync(this.path, { force: true }); // a socket file left by an earlier sidecar run
    const server = net.createServer((socket) => {
      const previous = this.current;
      const session = new Session(socket, this.handlers, this.heartbeat, this.log, this.spillOffer);
      this.current = session;
      if (previous) previous.close("a new worker connection replaced it");
      this.log.info("worker connected", { session: session.id });
      socket.on("close", () => {
        if (this.current === session) this.current = undefined;
      });
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.path, () => {
        server.off("error", reject);
        resolve();
      });
    });
  }

  close(): void {
    this.current?.close("the sidecar is stopping");
    this.server?.close();
    rmSync(this.path, { force: true });
  }
}
