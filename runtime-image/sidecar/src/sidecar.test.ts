// The sidecar in-process against the real Python worker (python3 -m trellis.worker) and a
// stand-in operator speaking the runtime API of protocol/src/runtime-api.ts.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CALL_FAILURE_REASONS,
  childName,
  createLogger,
  FAILURE_REASONS,
  WORKER_FAILURE_REASONS,
} from "../../../protocol/index.js";
import type { SidecarConfig } from "./config.js";
import { FakeOperator } from "./fake-operator.testlib.js";
import { OperatorClient } from "./operator-client.js";
import { Sidecar } from "./sidecar.js";
import { APP, type Worker, startWorker } from "./worker.testlib.js";

describe("sidecar with the real worker", { timeout: 30_000 }, () => {
  let dir: string;
  let op: FakeOperator;
  let sidecar: Sidecar;
  let client: OperatorClient;
  let worker: Worker;
  let logs: string[];
  let config: SidecarConfig;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "trellis-sidecar-"));
    writeFileSync(join(dir, "app.py"), APP);
    op = new FakeOperator();
    await op.start();
    logs = [];
    const log = createLogger({ level: "debug", sink: (l) => logs.push(l) });
    config = {
      operatorUrl: op.url,
      podNamespace: "default",
      podName: "app-pair-sum-abcde",
      token: op.token,
      function: "pair_sum",
      concurrency: 4,
      socket: join(dir, "worker.sock"),
      sdkSource: "",
      sdkDir: join(dir, "sdk"),
      readyFile: join(dir, "ready"),
      workerHeartbeatMs: 100,
      workerHeartbeatTimeoutMs: 3_000, // a loaded test machine must not look like a hung worker
      timeoutGraceMs: 200,
      workerReturnMs: 10_000,
      drainDeadlineSeconds: 10,
      progressIntervalMs: 50,
      logLevel: "debug",
    };
    client = new OperatorClient({
      url: op.url,
      namespace: "default",
      pod: config.podName,
      token: op.token,
      log,
      backoff: { initialMs: 5, maxMs: 50, multiplier: 2 },
    });
    sidecar = new Sidecar({ config, client, log, version: "test" });
    await sidecar.start();
    worker = startWorker(dir, config.socket);
    await op.until("registration", () => op.registrations.length === 1);
  });

  afterEach(async (ctx) => {
    sidecar.stop();
    worker.proc.kill("SIGKILL");
    await worker.exited;
    await op.stop();
    if (ctx.task.result?.state === "fail") {
      process.stderr.write(
        `--- sidecar log ---\n${logs.join("\n")}\n--- worker stderr ---\n${worker.stderr.join("")}\n`,
      );
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const final = (name: string, timeoutMs?: number) =>
    op.until(
      `${name} to finish`,
      () => {
        const c = op.calls.get(name);
        return c && ["Succeeded", "Failed", "Cancelled"].includes(c.phase) ? c : undefined;
      },
      timeoutMs,
    );

  it("registers the worker's function table with the pod's capacity", () => {
    const reg = op.registrations[0]!;
    expect(reg).toMatchObject({ function: "pair_sum", capacity: 4, sidecarVersion: "test" });
    expect(reg.functions.find((f) => f.name === "pair_sum")).toMatchObject({
      application: true,
      async: false,
      maxConcurrency: 4,
    });
    expect(reg.functions.map((f) => f.name)).toContain("forever");
  });

  it("runs a call that creates children, waits for them and succeeds", async () => {
    op.addRoot("r0123456789abcdef", "pair_sum", [{ value: 3 }]);
    const root = await final("r0123456789abcdef");
    expect(root.phase).toBe("Succeeded");
    expect(root.output).toEqual({ value: 14 });
    // Children named per PROTOCOL.md §7, with the sequence numbers the operator checks.
    const kids = op
      .routes("children")
      .flatMap((r) => (r.body as { calls: { name: string; sequence: number; function: string }[] }).calls);
    expect(kids.map((k) => [k.name, k.sequence, k.function])).toEqual([
      ["r0123456789abcdef-564r2ejegai5vlsd", 0, "double"],
      ["r0123456789abcdef-jipmbttnlnhowces", 1, "double"],
      [expect.stringMatching(/^r0123456789abcdef-[a-z2-7]{16}$/), 2, "add"],
    ]);
    expect([...op.calls.values()].every((c) => c.phase === "Succeeded")).toBe(true);
    expect(op.routes("wait").length).toBeGreaterThanOrEqual(3);
  });

  it("serves concurrent requests, each waiting on its own request's calls", async () => {
    op.addRoot("ra", "pair_sum", [{ value: 1 }]);
    op.addRoot("rb", "pair_sum", [{ value: 10 }]);
    expect((await final("ra")).output).toEqual({ value: 6 });
    expect((await final("rb")).output).toEqual({ value: 42 });
    expect(op.received.filter((r) => r.status >= 400)).toEqual([]);
  });

  it("reports a user exception with type, message and traceback", async () => {
    op.addRoot("r-boom", "boom", [{ value: 3 }]);
    const c = await final("r-boom");
    expect(c.phase).toBe("Failed");
    expect(c.failures).toHaveLength(1);
    const f = c.failures[0]!;
    expect(f).toMatchObject({
      attempt: 1,
      kind: "user",
      retryable: true,
      error: { type: "ValueError", message: "bad 3" },
    });
    expect(f.error.traceback).toMatch(/Traceback[\s\S]*raise ValueError[\s\S]*ValueError: bad 3/);
  });

  it("hands a child's failure to the waiting parent, which can catch it", async () => {
    op.addRoot("r-catch", "catches", [{ value: 4 }]);
    const c = await final("r-catch");
    expect(c.output).toEqual({ value: "FunctionError: function 'boom' failed: ValueError: bad 4" });
  });

  // A parent that does not catch its child's failure fails with the child's reason: every reason
  // the operator can give a call must pass the worker's `failure` back (not a ProtocolError).
  it.each(CALL_FAILURE_REASONS.map((r, i) => [r, i]))(
    "relays a child's %s failure to the parent's failure",
    async (reason, i) => {
      const root = `r-relay-${i}`;
      op.presetOutcomes.set(childName(root, root, 0), {
        phase: "Failed",
        error: { type: "ChildError", message: `child failed with ${reason}`, reason },
      });
      op.addRoot(root, "relays", [{ value: 1 }]);
      const c = await final(root);
      expect(c.phase).toBe("Failed");
      const entry = FAILURE_REASONS[reason];
      const f = c.failures[0]!;
      expect(f.kind).toBe(entry.kind ?? "user");
      // Only a reason the worker raises itself may be retried; a relayed one is the child's final outcome.
      if (!(WORKER_FAILURE_REASONS as readonly string[]).includes(reason)) expect(f.retryable).toBe(false);
      expect(c.failures).toHaveLength(1);
      expect(f.error.type).toBe(reason === "request_error" ? "RequestError" : "FunctionError");
      expect(f.error.message).toContain(`child failed with ${reason}`);
      expect(logs.join("\n")).not.toMatch(/ProtocolError|protocol error/i);
    },
  );

  it("reports a tail call, and the call ends with its target's output", async () => {
    op.addRoot("r-tail", "tail", [{ value: 5 }]);
    const c = await final("r-tail");
    const target = childName("r-tail", "r-tail", 0);
    expect(c).toMatchObject({ phase: "Succeeded", output: { value: 10 }, tailCall: target });
    expect(op.routes("tail").map((r) => r.body)).toEqual([{ attempt: 1, tailCall: target }]);
    expect(op.routes("result").map((r) => r.body)).toEqual([{ attempt: 1, output: { value: 10 } }]);
  });

  it("reports a worker crash as an infrastructure failure and serves the restarted worker", async () => {
    op.addRoot("r-crash", "crash_once", [{ value: 1 }]);
    expect(await worker.exited).toBe(17);
    await op.until("the infrastructure failure", () => op.calls.get("r-crash")!.failures.length === 1);
    expect(op.calls.get("r-crash")!.failures[0]).toMatchObject({
      attempt: 1,
      kind: "infrastructure",
      error: { type: "WorkerLost" },
    });
    worker = startWorker(dir, config.socket); // what the kubelet does
    const c = await final("r-crash");
    expect(c).toMatchObject({ phase: "Succeeded", attempt: 2, output: { value: "survived 1" } });
    expect(op.registrations).toHaveLength(2);
  });

  it("treats a worker that stops answering heartbeats as lost", async () => {
    op.addRoot("r-hung", "sleepy", [{ value: 30 }]);
    await op.until("the call to run", () => op.calls.get("r-hung")!.phase === "Running");
    worker.proc.kill("SIGSTOP");
    await op.until("the infrastructure failure", () => op.calls.get("r-hung")!.failures.length === 1, 10_000);
    expect(op.calls.get("r-hung")!.failures[0]).toMatchObject({
      kind: "infrastructure",
      error: { message: expect.stringMatching(/no heartbeat answer/) },
    });
  });

  it("gives the worker the assignment's timeout, which overrides the decorator's", async () => {
    // `forever` is decorated with timeout=120; the operator resolved 0.3 s for this call.
    op.addRoot("r-slow", "forever", [{ value: 1 }], { timeoutSeconds: 0.3 });
    const c = await final("r-slow");
    expect(c.failures[0]).toMatchObject({
      kind: "timeout",
      retryable: true,
      error: { type: "TimeoutError", message: expect.stringMatching(/timeout of 0.3 seconds/) },
    });
    // The worker stopped the attempt and is free again: a next call runs.
    op.addRoot("r-after", "double", [{ value: 2 }]);
    expect((await final("r-after")).output).toEqual({ value: 4 });
  });

  it("cancels a call the operator lists in a heartbeat answer, without reporting it", async () => {
    op.addRoot("r-cancel", "forever", [{ value: 1 }]);
    await op.until("the call to run", () => op.calls.get("r-cancel")!.phase === "Running");
    op.cancelNext = ["r-cancel"];
    await op.until("heartbeats without the call", () => {
      const hb = op.heartbeats.at(-1);
      return op.cancelNext.length === 0 && hb && !hb.calls.some((c) => c.call === "r-cancel");
    });
    expect(op.calls.get("r-cancel")!.failures).toEqual([]);
    expect(op.routes("result")).toEqual([]);
    expect(sidecar.running).toBe(0);
  });

  it("moves values over the inline limit through the blob store both ways", async () => {
    await sidecar.drain(0); // re-register with a small limit
    worker = startWorker(dir, config.socket);
    op.settings.inlineValueLimitBytes = 1024;
    const log = createLogger({ level: "debug", sink: (l) => logs.push(l) });
    client = new OperatorClient({ url: op.url, namespace: "default", pod: config.podName, token: op.token, log });
    sidecar = new Sidecar({ config, client, log, version: "test" });
    await sidecar.start();
    await op.until("registration", () => op.registrations.length === 2);
    op.addRoot("r-big", "big_pipeline", [{ value: 5000 }]);
    const c = await final("r-big");
    expect(c.output).toEqual({ value: 5000 });
    const bigChild = [...op.calls.values()].find((x) => x.function === "big")!;
    expect(bigChild.output).toEqual({ blob: expect.stringMatching(/^ns\/r-big-/) });
    expect(JSON.parse(op.blobs.get(bigChild.output!.blob!)!.toString())).toEqual({ value: "x".repeat(5000) });
    expect(op.routes("blob-get").length).toBeGreaterThanOrEqual(2); // the parent's resolved + length's input
  });

  it("passes a raw input stored as a blob to the worker and offloads its raw File output intact", async () => {
    await sidecar.drain(0); // re-register with a small limit
    worker = startWorker(dir, config.socket);
    op.settings.inlineValueLimitBytes = 1024;
    const log = createLogger({ level: "debug", sink: (l) => logs.push(l) });
    client = new OperatorClient({ url: op.url, namespace: "default", pod: config.podName, token: op.token, log });
    sidecar = new Sidecar({ config, client, log, version: "test" });
    await sidecar.start();
    await op.until("registration", () => op.registrations.length === 2);
    const bytes = Buffer.from(Array.from({ length: 4000 }, (_, i) => i % 251));
    const input = { raw: { contentType: "image/png", data: bytes.toString("base64") } };
    op.blobs.set("ns/r-raw/input", Buffer.from(JSON.stringify(input)));
    op.addRoot("r-raw", "reverse_file", [{ blob: "ns/r-raw/input" }]);
    const c = await final("r-raw");
    expect(c.failures).toEqual([]);
    expect(c.phase).toBe("Succeeded");
    expect(c.output).toEqual({ blob: expect.stringMatching(/^ns\/r-raw\//) });
    const doc = JSON.parse(op.blobs.get(c.output!.blob!)!.toString()) as { raw: { contentType: string; data: string } };
    expect(doc.raw.contentType).toBe("application/x-reversed");
    expect(Buffer.from(doc.raw.data, "base64")).toEqual(Buffer.from(bytes).reverse());
  });

  it("retries operator requests on 5xx and 429 until acknowledged", async () => {
    op.inject.set("result", [503, 429, 500]);
    op.inject.set("children", [502]);
    op.addRoot("r-retry", "pair_sum", [{ value: 1 }]);
    const c = await final("r-retry");
    expect(c.output).toEqual({ value: 6 });
    expect(op.routes("result").filter((r) => r.status !== 200).length).toBe(3);
    expect(client.stats.retries).toBeGreaterThanOrEqual(4);
  });

  it("relays request state, progress and metrics", async () => {
    op.addRoot("r-state", "stateful", [{ value: 41 }]);
    const c = await final("r-state");
    expect(c.output).toEqual({ value: 42 });
    expect(op.state.get("r-state/seen")).toEqual({ value: 41 });
    expect(op.progress).toEqual([{ call: "r-state", body: { current: 1, total: 2, message: "half" } }]);
    expect(logs.some((l) => l.includes("metrics of the attempt") && l.includes('"counter:calls":1'))).toBe(true);
    expect(sidecar.metrics.get("counter:calls")).toBe(1);
  });

  it("drains on request: running calls finish, the worker exits 0, then the sidecar stops", async () => {
    op.addRoot("r-drain", "sleepy", [{ value: 0.5 }]);
    await op.until("the call to run", () => op.calls.get("r-drain")!.phase === "Running" && sidecar.running === 1);
    await sidecar.drain(10);
    expect(op.calls.get("r-drain")).toMatchObject({ phase: "Succeeded", output: { value: 0.5 } });
    expect(op.heartbeats.some((h) => h.draining)).toBe(true);
    expect(await worker.exited).toBe(0);
  });

  it("reports calls still running at the drain deadline as infrastructure failures", async () => {
    op.addRoot("r-late", "sleepy", [{ value: 20 }]);
    await op.until("the call to run", () => op.calls.get("r-late")!.phase === "Running" && sidecar.running === 1);
    await sidecar.drain(0.3);
    expect(op.calls.get("r-late")!.failures[0]).toMatchObject({
      kind: "infrastructure",
      error: { type: "PodShutdown" },
    });
  });
});

describe("sidecar with a worker whose code does not import", { timeout: 30_000 }, () => {
  it("reports the load failure to the operator and keeps serving", async () => {
    const dir = mkdtempSync(join(tmpdir(), "trellis-sidecar-"));
    writeFileSync(join(dir, "broken.py"), "import no_such_module_here\n");
    const op = new FakeOperator();
    await op.start();
    const logs: string[] = [];
    const log = createLogger({ level: "debug", sink: (l) => logs.push(l) });
    const client = new OperatorClient({ url: op.url, namespace: "default", pod: "p", token: op.token, log });
    const config = {
      operatorUrl: op.url,
      podNamespace: "default",
      podName: "p",
      token: op.token,
      function: "f",
      socket: join(dir, "worker.sock"),
      sdkSource: "",
      sdkDir: "",
      readyFile: join(dir, "ready"),
      workerHeartbeatMs: 100,
      workerHeartbeatTimeoutMs: 3000,
      timeoutGraceMs: 200,
      workerReturnMs: 1000,
      drainDeadlineSeconds: 1,
      progressIntervalMs: 50,
      logLevel: "debug" as const,
    };
    const sidecar = new Sidecar({ config, client, log, version: "test" });
    await sidecar.start();
    try {
      for (let i = 1; i <= 2; i++) {
        const w = startWorker(dir, config.socket, "broken.py");
        expect(await w.exited).toBe(3);
        await op.until("the load failure", () => op.loadFailures.length === i);
      }
      expect(op.loadFailures[0]).toMatchObject({
        function: "f",
        error: { type: "ModuleNotFoundError", message: "No module named 'no_such_module_here'" },
      });
      expect(op.loadFailures[0]!.error.traceback).toMatch(/Traceback/);
      expect(op.registrations).toEqual([]);
      expect(existsSync(config.socket)).toBe(true);
    } finally {
      sidecar.stop();
      await op.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
