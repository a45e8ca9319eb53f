// A scripted worker for the link tests: it connects to the sidecar's socket and speaks the
// protocol frame by frame, so a test decides exactly what the worker says and sees what it is told
// (no Python, no timing).
import net from "node:net";
import { FrameDecoder, encodeFrame, type WorkerMessage } from "./framing.js";
import { Notifier } from "./notifier.js";

/** A hello that checks out (PROTOCOL.md §3), with two functions. */
export const HELLO = {
  type: "hello",
  protocol: 1,
  sdk: "0.1.0",
  python: "3.11.7",
  pid: 42,
  module: "app.py",
  concurrency: 2,
  functions: [
    { name: "slow", async: false, application: true, timeout: 2, retries: null, max_concurrency: 2 },
    { name: "double", async: false, application: false },
  ],
};

export class FakeWorker {
  readonly received: WorkerMessage[] = [];
  private readonly taken = new Set<WorkerMessage>();
  private readonly changed = new Notifier();
  private readonly decoder = new FrameDecoder();
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      for (const m of this.decoder.push(chunk)) this.received.push(m);
      this.changed.notify();
    });
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.ended = true;
        this.changed.notify();
        resolve();
      }),
    );
    socket.on("error", () => {}); // a reset shows as close
  }

  static connect(path: string): Promise<FakeWorker> {
    return new Promise((resolve, reject) => {
      const socket = net.createConnection(path, () => resolve(new FakeWorker(socket)));
      socket.once("error", reject);
    });
  }

  send(msg: object): void {
    this.socket.write(encodeFrame(msg as WorkerMessage));
  }

  /** Bytes as they are, e.g. a broken frame. */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next message of `type` not taken yet (in order received); rejects once the connection closed. */
  async next(type: string, match: (m: WorkerMessage) => boolean = () => true): Promise<WorkerMessage> {
    for (;;) {
      const m = this.received.find((x) => x.type === type && !this.taken.has(x) && match(x));
      if (m) {
        this.taken.add(m);
        return m;
      }
      if (this.ended) throw new Error(`the connection closed before a ${type} message arrived`);
      await this.changed.wait();
    }
  }

  /** hello → welcome. */
  async handshake(hello: object = HELLO): Promise<WorkerMessage> {
    this.send(hello);
    return this.next("welcome");
  }

  end(): void {
    this.socket.destroy();
  }
}
