// The worker's life inside the whole sidecar (worker-supervisor.ts, worker-inbox.ts, leasing.ts):
// a scripted worker (no Python) against the stand-in operator. Welcome → registration; leased
// calls → `assign` with the operator's timeout; a dropped connection → the attempts it was running
// given back as infrastructure loss; messages that break the protocol answered, not left waiting.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { assignMessage, createLogger } from "../../../protocol/index.js";
import type { SidecarConfig } from "./config.js";
import { FakeOperator } from "./fake-operator.testlib.js";
import { FakeWorker, HELLO } from "./fake-worker.testlib.js";
import { OperatorClient } from "./operator-client.js";
import { Sidecar } from "./sidecar.js";

describe("the sidecar's worker supervision", { timeout: 20_000 }, () => {
  let dir: string;
  let op: FakeOperator;
  let sidecar: Sidecar;
  let logs: string[];
  let config: SidecarConfig;
  const workers: FakeWorker[] = [];

  const connect = async () => {
    const w = await FakeWorker.connect(config.socket);
    workers.push(w);
    await w.handshake();
    return w;
  };
  const failures = (call: string, n: number) =>
    op.until(`${n} failure(s) of ${call}`, () => op.calls.get(call)!.failures.length >= n && op.calls.get(call)!);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "trellis-supervisor-"));
    op = new FakeOperator();
    await op.start();
    logs = [];
    const log = createLogger({ level: "debug", sink: (l) => logs.push(l) });
    config = {
      operatorUrl: op.url,
      podNamespace: "default",
      podName: "app-slow-abcde",
      token: op.token,
      function: "slow",
      socket: join(dir, "worker.sock"),
      sdkSource: "",
      sdkDir: join(dir, "sdk"),
      readyFile: join(dir, "ready"),
      workerHeartbeatMs: 60_000, // the scripted worker does not answer heartbeats
      workerHeartbeatTimeoutMs: 120_000,
      timeoutGraceMs: 10_000,
      workerReturnMs: 10_000,
      drainDeadlineSeconds: 1,
      progressIntervalMs: 50,
      logLevel: "debug",
    };
    const client = new OperatorClient({
      url: op.url,
      namespace: "default",
      pod: config.podName,
      token: op.token,
      log,
      backoff: { initialMs: 5, maxMs: 50, multiplier: 2 },
    });
    sidecar = new Sidecar({ config, client, log, version: "test" });
    await sidecar.start();
  });

  afterEach(async (ctx) => {
    sidecar.stop();
    for (const w of workers.splice(0)) w.end();
    await op.stop();
    if (ctx.task.result?.state === "fail") process.stderr.write(`--- sidecar log ---\n${logs.join("\n")}\n`);
    rmSync(dir, { recursive: true, force: true });
  });

  it("registers a welcomed worker with its function table and capacity", async () => {
    await connect();
    await op.until("registration", () => op.registrations.length === 1);
    expect(op.registrations[0]).toEqual({
      function: "slow",
      capacity: HELLO.concurrency,
      sidecarVersion: "test",
      workerVersion: "0.1.0",
      functions: [
        { name: "slow", async: false, application: true, timeoutSeconds: 2, maxConcurrency: 2 },
        { name: "double", async: false, application: false },
      ],
    });
  });

  it("assigns a leased call with the operator's timeout and reports its result", async () => {
    const w = await connect();
    // The decorator says timeout=2 (HELLO); the operator resolved 20 for this call.
    op.addRoot("r-timeout", "slow", [{ value: 5 }], { timeoutSeconds: 20 });
    const assign = await w.next("assign");
    expect(assign).toEqual({
      type: "assign",
      call: "r-timeout",
      attempt: 1,
      request: "r-timeout",
      function: "slow",
      args: [{ json: 5 }],
      kwargs: {},
      headers: {},
      timeout: 20,
    });
    expect(assignMessage.safeParse(assign).success).toBe(true);
    w.send({ type: "result", call: "r-timeout", attempt: 1, output: { json: 10 } });
    await op.until("the result", () => op.calls.get("r-timeout")!.phase === "Succeeded");
    expect(op.calls.get("r-timeout")!.output).toEqual({ value: 10 });
  });

  it("gives back what a dropped connection was running as infrastructure loss, and serves the next worker", async () => {
    const first = await connect();
    op.addRoot("ra", "slow", [{ value: 1 }]);
    op.addRoot("rb", "slow", [{ value: 2 }]);
    await first.next("assign", (m) => m.call === "ra");
    await first.next("assign", (m) => m.call === "rb");
    expect(sidecar.running).toBe(2);
    first.end();
    for (const call of ["ra", "rb"]) {
      const c = await failures(call, 1);
      expect(c.failures[0]).toMatchObject({
        attempt: 1,
        kind: "infrastructure",
        retryable: true,
        error: {
          type: "WorkerLost",
          message: "the worker was lost while running the call: the worker closed the connection",
        },
      });
    }
    expect(sidecar.running).toBe(0);

    const second = await connect(); // what the kubelet does
    await op.until("the second registration", () => op.registrations.length === 2);
    const again = await second.next("assign", (m) => m.call === "ra");
    expect(again).toMatchObject({ attempt: 2, timeout: 60 });
  });

  it("fails an attempt whose result breaks the protocol, naming the field, without a retry", async () => {
    const w = await connect();
    op.addRoot("r-bad", "slow", [{ value: 1 }]);
    await w.next("assign");
    w.send({ type: "result", call: "r-bad", attempt: 1, output: { json: 1, pickle: "AAAA" } });
    const c = await failures("r-bad", 1);
    expect(c.failures[0]).toEqual({
      attempt: 1,
      kind: "user",
      retryable: false,
      error: { type: "ProtocolError", message: "result.output: must be a value form ({json}|{pickle}|{list}|{raw})" },
    });
  });

  it("answers an invalid state request and an invalid watch, so the worker does not wait forever", async () => {
    const w = await connect();
    op.addRoot("r-wait", "slow", [{ value: 1 }]);
    await w.next("assign");
    w.send({ type: "state_get", rid: "7", call: "r-wait", request: "r-wait" });
    expect(await w.next("reply")).toEqual({
      type: "reply",
      rid: "7",
      ok: false,
      error: expect.stringMatching(/^invalid state_get: state_get\.key: /),
    });
    w.send({ type: "watch", call: "r-wait", attempt: 1, ids: ["r-wait-aaaaaaaaaaaaaaaa", "Not An Id"] });
    const resolved = await w.next("resolved");
    expect(resolved).toMatchObject({
      id: "r-wait-aaaaaaaaaaaaaaaa",
      error: { type: "InternalError", reason: "internal", message: expect.stringMatching(/watch\.ids\[1\]/) },
    });
  });

  it("fails the watches of children from a calls message that breaks the protocol", async () => {
    const w = await connect();
    op.addRoot("r-kids", "slow", [{ value: 1 }]);
    await w.next("assign");
    const id = "r-kids-564r2ejegai5vlsd";
    w.send({
      type: "calls",
      call: "r-kids",
      attempt: 1,
      calls: [{ id, kind: "call", function: "double", args: [{}] }],
    });
    w.send({ type: "watch", call: "r-kids", attempt: 1, ids: [id] });
    expect(await w.next("resolved")).toMatchObject({
      id,
      error: {
        type: "InternalError",
        message: expect.stringMatching(/calls\.calls\[0\]\.args\[0\]/),
      },
    });
    expect(op.routes("children")).toEqual([]);
  });
});
