// The bundled sidecar as the pod runs it: `node sidecar.mjs` with the pod's environment, the SDK
// copied into the shared directory (the worker imports it from there), the ready marker, and a
// real SIGTERM that drains and exits 0.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeOperator } from "./fake-operator.testlib.js";
import { APP, PYTHON_ROOT } from "./worker.testlib.js";

const here = dirname(fileURLToPath(import.meta.url));

describe("the bundled sidecar", { timeout: 60_000 }, () => {
  let dir: string;
  let bundle: string;
  let op: FakeOperator;
  const procs: ChildProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "trellis-bundle-"));
    bundle = join(dir, "sidecar.mjs");
    execFileSync(process.execPath, [resolve(here, "../build.mjs"), "--outfile", bundle], { stdio: "pipe" });
    op = new FakeOperator();
    await op.start();
  });

  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    await op.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("prints its version", () => {
    expect(execFileSync(process.execPath, [bundle, "--version"]).toString()).toMatch(/^trellis-sidecar \d+\.\d+\.\d+/);
  });

  it("rejects a bad environment naming the variable", () => {
    let err: { status?: number; stderr?: Buffer } = {};
    try {
      execFileSync(process.execPath, [bundle], { env: { PATH: process.env.PATH }, stdio: "pipe" });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).toBe(2);
    expect(err.stderr?.toString()).toMatch(/TRELLIS_OPERATOR_URL: is required/);
  });

  it("copies the SDK, serves the worker from that copy, and drains on SIGTERM", async () => {
    const run = join(dir, "run");
    const app = join(dir, "app");
    execFileSync("mkdir", ["-p", app]);
    writeFileSync(join(app, "app.py"), APP);
    const socket = join(run, "worker.sock");
    const sidecar = spawn(process.execPath, [bundle], {
      env: {
        PATH: process.env.PATH,
        TRELLIS_OPERATOR_URL: op.url,
        TRELLIS_POD_NAMESPACE: "default",
        TRELLIS_POD_NAME: "app-sleepy-x1y2z",
        TRELLIS_POD_TOKEN: op.token,
        TRELLIS_FUNCTION: "sleepy",
        TRELLIS_SOCKET: socket,
        TRELLIS_SDK_SOURCE: PYTHON_ROOT,
        TRELLIS_SDK_DIR: join(run, "python"),
        TRELLIS_DRAIN_DEADLINE_SECONDS: "20",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    procs.push(sidecar);
    const out: string[] = [];
    sidecar.stdout!.on("data", (c: Buffer) => out.push(c.toString()));
    sidecar.stderr!.on("data", (c: Buffer) => out.push(c.toString()));
    const sidecarExit = new Promise<number | null>((r) => sidecar.on("exit", (code) => r(code)));
    await op.until("the ready marker", () => existsSync(join(run, "sidecar.ready")) && existsSync(socket), 20_000);
    expect(existsSync(join(run, "python", "trellis", "worker", "__main__.py"))).toBe(true);
    expect(existsSync(join(run, "python", "tests"))).toBe(false);

    // The worker as the pod builder starts it: the SDK from the shared copy only.
    const worker = spawn(
      "python3",
      ["-m", "trellis.worker", "--socket", socket, "--module", "app.py", "--function", "sleepy"],
      {
        cwd: app,
        env: { PATH: process.env.PATH, PYTHONPATH: [join(run, "python"), app].join(":"), PYTHONDONTWRITEBYTECODE: "1" },
        stdio: "ignore",
      },
    );
    procs.push(worker);
    const workerExit = new Promise<number | null>((r) => worker.on("exit", (code) => r(code)));
    await op.until("registration", () => op.registrations.length === 1, 20_000);
    expect(op.registrations[0]).toMatchObject({ function: "sleepy", capacity: 1 });

    op.addRoot("r-sigterm", "sleepy", [{ value: 0.5 }]);
    await op.until("the call to run", () => op.calls.get("r-sigterm")!.phase === "Running");
    sidecar.kill("SIGTERM");
    expect(await sidecarExit).toBe(0);
    expect(op.calls.get("r-sigterm")).toMatchObject({ phase: "Succeeded", output: { value: 0.5 } });
    expect(await workerExit).toBe(0);
    expect(existsSync(join(run, "sidecar.ready"))).toBe(false);
    expect(out.join("")).toMatch(/"msg":"drained"/);
  });
});
