// The worker connection (worker-link.ts): handshake and welcome, protocol version, messages
// checked at the boundary, loss of the connection, and the heartbeat that finds a hung worker.
// A scripted worker (fake-worker.testlib.ts) on a real Unix socket; heartbeats on fake timers.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLogger, type WorkerToSidecar } from "../../../protocol/index.js";
import { FakeWorker, HELLO } from "./fake-worker.testlib.js";
import type { WorkerMessage } from "./framing.js";
import { Notifier } from "./notifier.js";
import { type Fatal, type Hello, type Session, type SessionHandlers, WorkerServer } from "./worker-link.js";

/** Records what the Session hands over; `until` waits for it without sleeping. */
class Recorder implements SessionHandlers {
  readonly readies: { session: Session; hello: Hello }[] = [];
  readonly fatals: Fatal[] = [];
  readonly messages: WorkerToSidecar[] = [];
  readonly invalids: { raw: WorkerMessage; problems: string[] }[] = [];
  readonly losses: { session: Session; why: string }[] = [];
  private readonly changed = new Notifier();

  ready(session: Session, hello: Hello): void {
    this.readies.push({ session, hello });
    this.changed.notify();
  }
  fatal(fatal: Fatal): void {
    this.fatals.push(fatal);
    this.changed.notify();
  }
  message(_session: Session, msg: WorkerToSidecar): void {
    this.messages.push(msg);
    this.changed.notify();
  }
  invalid(_session: Session, raw: WorkerMessage, problems: string[]): void {
    this.invalids.push({ raw, problems });
    this.changed.notify();
  }
  lost(session: Session, why: string): void {
    this.losses.push({ session, why });
    this.changed.notify();
  }
  async until(cond: () => boolean): Promise<void> {
    while (!cond()) await this.changed.wait();
  }
}

const ACK = { type: "heartbeat_ack", running: [], queued: 0, capacity: 2, abandoned: 0, loop_stalled: 0 };

describe("the worker link", () => {
  let dir: string;
  let socket: string;
  let rec: Recorder;
  let logs: string[];
  let server: WorkerServer;
  const workers: FakeWorker[] = [];

  const serve = async (heartbeat = { intervalMs: 100, timeoutMs: 300 }) => {
    server = new WorkerServer(socket, rec, heartbeat, createLogger({ level: "debug", sink: (l) => logs.push(l) }));
    await server.listen();
  };
  const connect = async () => {
    const w = await FakeWorker.connect(socket);
    workers.push(w);
    return w;
  };
  const logged = (text: string) => logs.filter((l) => l.includes(text));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "trellis-link-"));
    socket = join(dir, "worker.sock");
    rec = new Recorder();
    logs = [];
  });
  afterEach(() => {
    vi.useRealTimers();
    for (const w of workers.splice(0)) w.end();
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("welcomes a worker whose hello checks out and hands over the checked hello", async () => {
    await serve();
    const w = await connect();
    expect(await w.handshake()).toEqual({ type: "welcome", protocol: 1 });
    await rec.until(() => rec.readies.length === 1);
    const { session, hello } = rec.readies[0]!;
    expect(hello).toMatchObject({ protocol: 1, concurrency: 2, sdk: "0.1.0" });
    expect(hello.functions.map((f) => f.name)).toEqual(["slow", "double"]);
    expect(session.ready).toBe(true);
    expect(server.session).toBe(session);
  });

  it("ignores messages before hello", async () => {
    await serve();
    const w = await connect();
    w.send({ type: "bye", unfinished: [] });
    await w.handshake();
    expect(rec.messages).toEqual([]);
    expect(logged("ignoring a message before hello")).toHaveLength(1);
  });

  it("shuts down a worker of another protocol version without welcoming it", async () => {
    await serve();
    const w = await connect();
    w.send({ ...HELLO, protocol: 2 });
    expect(await w.next("shutdown")).toEqual({ type: "shutdown", drain: false, deadline: 0 });
    expect(logged("the worker speaks another protocol version")[0]).toMatch(/"protocol":2,"want":1/);
    w.end(); // the worker answers bye and exits
    await w.closed;
    expect(w.received.map((m) => m.type)).toEqual(["shutdown"]);
    expect(rec.readies).toEqual([]);
    expect(rec.losses).toEqual([]); // never ready, so nothing to give back
  });

  it("shuts down a worker whose hello breaks the rules, naming the field and the rule", async () => {
    await serve();
    const w = await connect();
    w.send({ ...HELLO, concurrency: 0 });
    await w.next("shutdown");
    expect(logged("the worker's hello is invalid")[0]).toMatch(/hello\.concurrency: Too small/);
    expect(rec.readies).toEqual([]);
  });

  it("leaves a bad entry out of the function table and keeps the rest", async () => {
    await serve();
    const w = await connect();
    await w.handshake({ ...HELLO, functions: [...HELLO.functions, { name: "odd", async: "no", application: false }] });
    await rec.until(() => rec.readies.length === 1);
    expect(rec.readies[0]!.hello.functions.map((f) => f.name)).toEqual(["slow", "double"]);
    expect(logged("left out")[0]).toMatch(/hello\.functions\[2\]\.async/);
  });

  it("hands over the worker's fatal and closes the connection", async () => {
    await serve();
    const w = await connect();
    w.send({ type: "fatal", protocol: 1, error: { type: "ImportError", message: "no module x", traceback: "tb" } });
    await w.closed;
    expect(rec.fatals).toEqual([
      { type: "fatal", protocol: 1, error: { type: "ImportError", message: "no module x", traceback: "tb" } },
    ]);
    expect(rec.losses).toEqual([]);
  });

  it("passes checked messages on in order, invalid ones with their problems, unknown ones nowhere", async () => {
    await serve();
    const w = await connect();
    await w.handshake();
    w.send({ type: "watch", call: "r1", attempt: 1, ids: ["r1-aaaaaaaaaaaaaaaa"] });
    w.send({ type: "result", call: "r1", attempt: 1, output: { json: 1, pickle: "AAAA" } });
    w.send({ type: "from_the_future", x: 1 });
    w.send({ type: "bye", unfinished: [] });
    await rec.until(() => rec.messages.length === 2);
    expect(rec.messages).toEqual([
      { type: "watch", call: "r1", attempt: 1, ids: ["r1-aaaaaaaaaaaaaaaa"] },
      { type: "bye", unfinished: [] },
    ]);
    expect(rec.invalids).toHaveLength(1);
    expect(rec.invalids[0]!.problems).toEqual(["result.output: must be a value form ({json}|{pickle}|{list}|{raw})"]);
    expect(logged("invalid message from the worker")[0]).toMatch(/result\.output: must be a value form/);
    expect(logged("ignoring an unknown message from the worker")[0]).toMatch(/from_the_future/);
  });

  it("reports a dropped connection as lost, once", async () => {
    await serve();
    const w = await connect();
    await w.handshake();
    await rec.until(() => rec.readies.length === 1);
    w.end();
    await rec.until(() => rec.losses.length === 1);
    expect(rec.losses[0]).toEqual({ session: rec.readies[0]!.session, why: "the worker closed the connection" });
    expect(rec.readies[0]!.session.send({ type: "heartbeat", seq: 1 })).toBe(false);
    expect(rec.losses).toHaveLength(1);
  });

  it("replaces the connection of a restarted worker", async () => {
    await serve();
    const first = await connect();
    await first.handshake();
    const second = await connect();
    await first.closed;
    await rec.until(() => rec.losses.length === 1);
    expect(rec.losses[0]!.why).toBe("a new worker connection replaced it");
    await second.handshake();
    await rec.until(() => rec.readies.length === 2);
    expect(server.session).toBe(rec.readies[1]!.session);
  });

  it("closes the connection on a broken frame", async () => {
    await serve();
    const w = await connect();
    await w.handshake();
    const body = Buffer.from("not json");
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length);
    w.sendRaw(Buffer.concat([header, body]));
    await w.closed;
    await rec.until(() => rec.losses.length === 1);
    expect(rec.losses[0]!.why).toMatch(/^protocol error: frame is not UTF-8 JSON/);
  });

  describe("heartbeat", () => {
    beforeEach(() => {
      // Only the heartbeat's clock is fake: socket I/O stays real.
      vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "Date"] });
    });

    it("sends a heartbeat every interval and keeps a worker that answers", async () => {
      await serve({ intervalMs: 100, timeoutMs: 300 });
      const w = await connect();
      await w.handshake();
      await rec.until(() => rec.readies.length === 1);
      const session = rec.readies[0]!.session;
      for (let seq = 1; seq <= 10; seq++) {
        vi.advanceTimersByTime(100);
        expect(await w.next("heartbeat")).toEqual({ type: "heartbeat", seq });
        w.send({ ...ACK, seq, abandoned: seq });
        w.send({ type: "bye", unfinished: [] }); // a marker: messages are applied in order
        await rec.until(() => rec.messages.length === seq);
      }
      expect(session.abandoned).toBe(10);
      expect(rec.losses).toEqual([]);
    });

    it("closes the connection of a worker that stops answering, and reports it lost", async () => {
      await serve({ intervalMs: 100, timeoutMs: 300 });
      const w = await connect();
      await w.handshake();
      await rec.until(() => rec.readies.length === 1);
      vi.advanceTimersByTime(300); // heartbeats 1-3, unanswered; silent for 300 ms: not yet
      expect(rec.losses).toEqual([]);
      vi.advanceTimersByTime(100);
      expect(rec.losses.map((l) => l.why)).toEqual(["no heartbeat answer for 300 ms"]);
      await w.closed;
      expect(w.received.filter((m) => m.type === "heartbeat").map((m) => m.seq)).toEqual([1, 2, 3]);
      expect(logged("the worker stopped answering heartbeats")).toHaveLength(1);
    });

    it("counts an answer that breaks the rules as a sign of life, ignoring its content", async () => {
      await serve({ intervalMs: 100, timeoutMs: 300 });
      const w = await connect();
      await w.handshake();
      await rec.until(() => rec.readies.length === 1);
      for (let seq = 1; seq <= 5; seq++) {
        vi.advanceTimersByTime(100);
        await w.next("heartbeat");
        w.send({ type: "heartbeat_ack", seq, abandoned: 3 }); // missing fields
        await rec.until(() => rec.invalids.length === seq);
      }
      expect(rec.losses).toEqual([]);
      expect(rec.readies[0]!.session.abandoned).toBe(0);
      expect(rec.invalids[0]!.problems[0]).toMatch(/^heartbeat_ack\.running: /);
    });
  });
});
