// The sidecar against the operator's own engine and runtime API (in memory, no Kubernetes:
// operator/src/functioncall/test-harness.ts), one sidecar + real Python worker per function, as the
// pods of an Application would be.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { childName, createLogger } from "../../protocol/index.js";
import { type Harness, KEY, harness } from "../../operator/src/functioncall/test-harness.js";
import { podToken } from "../../operator/src/runtime-api/credentials.js";
import { OperatorClient } from "../../runtime-image/sidecar/src/operator-client.js";
import { Sidecar } from "../../runtime-image/sidecar/src/sidecar.js";
import { APP, type Worker, startWorker } from "../../runtime-image/sidecar/src/worker.testlib.js";

describe("sidecars against the operator's engine", { timeout: 60_000 }, () => {
  let h: Harness | undefined;
  let dir: string;
  const sidecars: Sidecar[] = [];
  const workers: Worker[] = [];
  let logs: string[] = [];

  afterEach(async (ctx) => {
    for (const s of sidecars.splice(0)) s.stop();
    for (const w of workers.splice(0)) {
      w.proc.kill("SIGKILL");
      await w.exited;
    }
    await h?.engine.runtimeApi.close();
    await h?.close();
    if (ctx.task.result?.state === "fail") process.stderr.write(logs.join("\n") + "\n");
    rmSync(dir, { recursive: true, force: true });
  });

  async function pods(functions: string[], limit?: number, leaseWaitMs = 2_000): Promise<void> {
    const mine: string[] = []; // sidecars of the previous test may still log into theirs
    logs = mine;
    h = await harness(
      { heartbeatIntervalMs: 200, leaseWaitMs, ...(limit ? { inlineValueLimitBytes: limit } : {}) },
      { entrypoint: "pair_sum" },
    );
    await h.engine.runtimeApi.listen({ port: 0, host: "127.0.0.1" });
    const url = `http://127.0.0.1:${(h.engine.runtimeApi.server.address() as AddressInfo).port}`;
    dir = mkdtempSync(join(tmpdir(), "trellis-engine-sidecar-"));
    writeFileSync(join(dir, "app.py"), APP);
    for (const fn of functions) {
      const pod = `app-${fn.replace(/_/g, "-")}-x1y2z`;
      h.pods.set(pod, fn);
      const log = createLogger({ level: "info", fields: { pod }, sink: (l) => mine.push(l) });
      const token = podToken(KEY, "ns", pod, `uid-${pod}`);
      const client = new OperatorClient({ url, namespace: "ns", pod, token, log });
      const socket = join(dir, `${pod}.sock`);
      const config = {
        operatorUrl: url,
        podNamespace: "ns",
        podName: pod,
        token,
        function: fn,
        concurrency: 2,
        socket,
        sdkSource: "",
        sdkDir: "",
        readyFile: join(dir, `${pod}.ready`),
        workerHeartbeatMs: 200,
        workerHeartbeatTimeoutMs: 5_000,
        timeoutGraceMs: 1_000,
        workerReturnMs: 5_000,
        drainDeadlineSeconds: 5,
        progressIntervalMs: 50,
        logLevel: "info" as const,
      };
      const sidecar = new Sidecar({ config, client, log, version: "test" });
      await sidecar.start();
      sidecars.push(sidecar);
      workers.push(startWorker(dir, socket));
    }
  }

  const finished = (name: string) =>
    h!.until(
      `${name} to finish`,
      () => {
        const c = h!.call(name);
        const phase = c?.status?.phase;
        return phase === "Succeeded" || phase === "Failed" ? c : undefined;
      },
      30_000,
    );

  it("runs a graph over three function pods: children, waits, result", async () => {
    await pods(["pair_sum", "double", "add"]);
    await h!.createRoot("r0123456789abcdef", { function: "pair_sum", args: [{ value: 3 }] });
    const root = await finished("r0123456789abcdef");
    expect(root!.status).toMatchObject({ phase: "Succeeded", output: { value: 14 } });
    expect(logs.filter((l) => /"level":"(warn|error)"/.test(l))).toEqual([]);
    expect(h!.call("r0123456789abcdef-564r2ejegai5vlsd")!.status).toMatchObject({
      phase: "Succeeded",
      output: { value: 6 },
    });
  });

  it("fails a call with the user's error, and a parent catches a child's failure", async () => {
    await pods(["boom", "catches"]);
    await h!.createRoot("rboom", { function: "boom", args: [{ value: 3 }] });
    await h!.createRoot("rcatch", { function: "catches", args: [{ value: 4 }] });
    const boom = await finished("rboom");
    expect(boom!.status).toMatchObject({ phase: "Failed", error: { type: "ValueError", message: "bad 3" } });
    expect(boom!.status!.error!.traceback).toMatch(/ValueError: bad 3/);
    const c = await finished("rcatch");
    expect(c!.status).toMatchObject({
      phase: "Succeeded",
      output: { value: "FunctionError: function 'boom' failed: ValueError: bad 4" },
    });
  });

  it("completes a tail call with its target's output", async () => {
    await pods(["tail", "double"]);
    await h!.createRoot("rtail", { function: "tail", args: [{ value: 5 }] });
    expect((await finished("rtail"))!.status).toMatchObject({ phase: "Succeeded", output: { value: 10 } });
  });

  it("moves large values through the blob store", async () => {
    await pods(["big_pipeline", "big", "length"], 1024);
    await h!.createRoot("rbig", { function: "big_pipeline", args: [{ value: 5000 }] });
    expect((await finished("rbig"))!.status).toMatchObject({ phase: "Succeeded", output: { value: 5000 } });
    // The big string went to the blob store as the child's output, and came back as an input.
    expect(h!.call(childName("rbig", "rbig", 0))!.status!.output).toEqual({
      blob: expect.stringMatching(/^ns\/rbig\//),
    });
    expect(logs.filter((l) => /"level":"(warn|error)"/.test(l))).toEqual([]);
  });

  it("re-runs a call whose worker crashed, on the restarted worker", async () => {
    await pods(["crash_once"]);
    await h!.createRoot("rcrash", { function: "crash_once", args: [{ value: 1 }] });
    expect(await workers[0]!.exited).toBe(17);
    workers.push(startWorker(dir, join(dir, "app-crash-once-x1y2z.sock"))); // what the kubelet does
    const c = await finished("rcrash");
    expect(c!.status).toMatchObject({ phase: "Succeeded", output: { value: "survived 1" }, attempts: 2 });
  });

  it("drains promptly: the parked lease ends, running calls finish", async () => {
    await pods(["sleepy"], undefined, 10_000);
    await h!.createRoot("rsleepy", { function: "sleepy", args: [{ value: 0.3 }] });
    await h!.until("the call to run", () => sidecars[0]!.running === 1, 10_000);
    const started = Date.now();
    await sidecars[0]!.drain(10);
    expect(Date.now() - started).toBeLessThan(5_000); // the parked lease (10 s wait) was ended at once
    expect(h!.call("rsleepy")!.status).toMatchObject({ phase: "Succeeded", output: { value: 0.3 } });
    expect(await workers[0]!.exited).toBe(0);
  });

  it("relays request state and progress", async () => {
    await pods(["stateful"]);
    await h!.createRoot("rstate", { function: "stateful", args: [{ value: 41 }] });
    expect((await finished("rstate"))!.status).toMatchObject({ phase: "Succeeded", output: { value: 42 } });
  });
});
