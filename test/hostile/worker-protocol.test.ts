// The hostile-input corpus of the worker protocol (test/hostile/worker-protocol.json): what the
// Python worker says to the sidecar over the socket. The sidecar runs in-process with a scripted
// worker on the real Unix socket and a stand-in operator. A message that breaks the rules fails
// the call it names (permanently, naming the field and the rule), is answered, or is logged and
// ignored; a broken stream closes the connection and a new worker is taken. The sidecar never
// crashes or hangs, and what was accepted before (a finished call, a call in flight) is unchanged.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../protocol/index.js";
import type { SidecarConfig } from "../../runtime-image/sidecar/src/config.js";
import { FakeOperator } from "../../runtime-image/sidecar/src/fake-operator.testlib.js";
import { FakeWorker, HELLO } from "../../runtime-image/sidecar/src/fake-worker.testlib.js";
import type { WorkerMessage } from "../../runtime-image/sidecar/src/framing.js";
import { OperatorClient } from "../../runtime-image/sidecar/src/operator-client.js";
import { Sidecar } from "../../runtime-image/sidecar/src/sidecar.js";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

interface Case {
  name: string;
  hello?: Obj;
  send: Obj[];
  expect: {
    victim: "failed" | "lost" | "running" | "succeeded";
    error?: string;
    output?: Json;
    log?: string;
    reply?: { type: string; match: string };
    registered?: string[];
  };
  note?: string;
}

const CORPUS = fileURLToPath(new URL("./worker-protocol.json", import.meta.url));
const corpus = JSON.parse(readFileSync(CORPUS, "utf8")) as { cases: Case[] };
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Expands generators and placeholders; deep values become markers that `frame` writes as text. */
function expand(v: Json, vars: Record<string, Json>): Json {
  if (typeof v === "string") return v in vars ? vars[v]! : v;
  if (Array.isArray(v)) return v.map((x) => expand(x, vars));
  if (!isObj(v)) return v;
  const s = v.$string as { length: number; char?: string; prefix?: string } | undefined;
  if (s) return (s.prefix ?? "") + (s.char ?? "a").repeat(s.length - (s.prefix ?? "").length);
  const a = v.$array as { count: number; item: Json } | undefined;
  if (a) return Array.from({ length: a.count }, () => expand(a.item, vars));
  if (typeof v.$deep === "number") return `@@deep:${v.$deep}@@`;
  if (typeof v.$deepList === "number") return `@@deepList:${v.$deepList}@@`;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expand(x, vars)]));
}

/** One frame: a 4-byte length (the real one unless overridden), then the bytes. */
function frame(m: Obj, vars: Record<string, Json>): Buffer {
  const r = m.$raw as { base64: string; length?: number } | undefined;
  const body = r
    ? Buffer.from(r.base64, "base64")
    : Buffer.from(
        JSON.stringify(expand(m, vars))
          .replace(/"@@deep:(\d+)@@"/g, (_, d: string) => `${"[".repeat(+d)}1${"]".repeat(+d)}`)
          .replace(/"@@deepList:(\d+)@@"/g, (_, d: string) => `${'{"list":['.repeat(+d)}{"json":1}${"]}".repeat(+d)}`),
        "utf8",
      );
  const header = Buffer.alloc(4);
  header.writeUInt32BE(r?.length ?? body.length, 0);
  return Buffer.concat([header, body]);
}

/** Answers the sidecar's heartbeats (as the real worker does) until the connection closes. */
async function ackHeartbeats(w: FakeWorker): Promise<void> {
  for (;;) {
    const hb = await w.next("heartbeat").catch(() => undefined);
    if (!hb) return;
    w.send({ type: "heartbeat_ack", seq: hb.seq, running: [], queued: 0, capacity: 2, abandoned: 0, loop_stalled: 0 });
  }
}

interface World {
  op: FakeOperator;
  sidecar: Sidecar;
  worker: FakeWorker;
  logs: string[];
  dir: string;
  config: SidecarConfig;
}
let world: World | undefined;

async function start(hello: Obj | undefined): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), "trellis-hostile-"));
  const op = new FakeOperator();
  await op.start();
  const logs: string[] = [];
  const log = createLogger({ level: "debug", sink: (l) => logs.push(l) });
  const config: SidecarConfig = {
    operatorUrl: op.url,
    podNamespace: "default",
    podName: "app-slow-abcde",
    token: op.token,
    function: "slow",
    concurrency: 2,
    socket: join(dir, "worker.sock"),
    sdkSource: "",
    sdkDir: join(dir, "sdk"),
    readyFile: join(dir, "ready"),
    workerHeartbeatMs: 100,
    workerHeartbeatTimeoutMs: 2_000,
    timeoutGraceMs: 200,
    workerReturnMs: 200,
    drainDeadlineSeconds: 5,
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
  const sidecar = new Sidecar({ config, client, log, version: "test" });
  await sidecar.start();
  const worker = await FakeWorker.connect(config.socket);
  world = { op, sidecar, worker, logs, dir, config };
  const h = hello ? (expand({ ...(HELLO as unknown as Obj), ...hello }, {}) as Obj) : (HELLO as unknown as Obj);
  expect(await worker.handshake(h)).toEqual({ type: "welcome", protocol: 1 });
  void ackHeartbeats(worker);
  await op.until("registration", () => op.registrations.length === 1);
  return world;
}

afterEach(async (ctx) => {
  if (!world) return;
  if (ctx.task.result?.state === "fail") process.stderr.write(`--- sidecar log ---\n${world.logs.join("\n")}\n`);
  world.sidecar.stop();
  world.worker.end();
  await world.op.stop();
  rmSync(world.dir, { recursive: true, force: true });
  world = undefined;
});

const assignOf = async (w: FakeWorker, call: string) => w.next("assign", (m) => m.call === call);
const result = (m: WorkerMessage, value: Json) => ({
  type: "result",
  call: m.call,
  attempt: m.attempt,
  output: { json: value },
});
const finished = (op: FakeOperator, name: string) =>
  op.until(`${name} to finish`, () => {
    const c = op.calls.get(name)!;
    return ["Succeeded", "Failed"].includes(c.phase) ? c : undefined;
  });
const snapshot = (op: FakeOperator, name: string) => structuredClone(op.calls.get(name));

async function runCase(c: Case): Promise<void> {
  const { op, worker, logs, config } = await start(c.hello);
  if (c.expect.registered) expect(op.registrations[0]!.functions.map((f) => f.name)).toEqual(c.expect.registered);
  // Accepted before the hostile input: one call finished, two in flight.
  op.addRoot("done", "slow", [{ value: 0 }]);
  worker.send(result(await assignOf(worker, "done"), "done"));
  expect((await finished(op, "done")).output).toEqual({ value: "done" });
  const done = snapshot(op, "done");
  op.addRoot("victim", "slow", [{ value: 1 }]);
  op.addRoot("bystander", "slow", [{ value: 2 }]);
  const victim = await assignOf(worker, "victim");
  const bystander = await assignOf(worker, "bystander");

  const vars = { $victim: "victim", $attempt: victim.attempt as number };
  for (const f of c.send) worker.sendRaw(frame(f, vars));

  const e = c.expect;
  if (e.log) await op.until(`a log line matching ${e.log}`, () => logs.some((l) => new RegExp(e.log!).test(l)));
  if (e.reply) {
    const m = await worker.next(e.reply.type, (x) => new RegExp(e.reply!.match).test(JSON.stringify(x)));
    expect(JSON.stringify(m)).toMatch(new RegExp(e.reply.match));
  }
  if (e.victim === "failed" || e.victim === "lost") {
    const want = e.victim === "failed" ? "ProtocolError" : "WorkerLost";
    const f = await op.until("the victim's failure", () => op.calls.get("victim")!.failures[0]);
    expect(`${f.error.type}: ${f.error.message}`).toMatch(new RegExp(e.error!.replace(/^\^ProtocolError: /, "")));
    expect(f.error.type).toBe(want);
    // A broken message is the worker's bug: not retried. A lost worker is the pod's: retried.
    expect(f.retryable).toBe(e.victim === "lost");
  }
  if (e.victim === "lost") {
    const b = await op.until("the bystander's failure", () => op.calls.get("bystander")!.failures[0]);
    expect(b.error.type).toBe("WorkerLost");
    // The sidecar takes the restarted worker.
    const again = await FakeWorker.connect(config.socket);
    world!.worker = again;
    expect(await again.handshake()).toEqual({ type: "welcome", protocol: 1 });
  } else {
    if (e.victim === "running") worker.send(result(victim, "real"));
    const v = await finished(op, "victim");
    if (e.victim === "running") expect(v.output).toEqual({ value: "real" });
    if (e.victim === "succeeded") expect(v.output).toEqual(e.output);
    worker.send(result(bystander, "by"));
    expect((await finished(op, "bystander")).output).toEqual({ value: "by" });
  }
  // Nothing already accepted changed: the finished call and its single report.
  expect(op.calls.get("done")).toEqual(done);
  expect(op.routes("result").filter((r) => r.path.includes("/done/"))).toHaveLength(1);
}

describe("hostile-input corpus: test/hostile/worker-protocol.json", { timeout: 20_000 }, () => {
  it("holds named, distinct cases, each with an expectation", () => {
    expect(corpus.cases.length).toBeGreaterThanOrEqual(20);
    const names = corpus.cases.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const c of corpus.cases) {
      expect(["failed", "lost", "running", "succeeded"], c.name).toContain(c.expect.victim);
      if (c.expect.victim === "failed" || c.expect.victim === "lost") expect(c.expect.error, c.name).toBeTruthy();
      for (const r of [c.expect.error, c.expect.log, c.expect.reply?.match]) {
        if (r !== undefined) expect(() => new RegExp(r), c.name).not.toThrow();
      }
    }
  });

  it.each(corpus.cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    await runCase(c);
  });
});
