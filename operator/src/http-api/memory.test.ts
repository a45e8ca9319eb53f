// Bounded memory for Files: a server in its own process (memory-server.testlib.ts) takes a 512 MiB
// raw body generated as it is sent and answers it back as the request's output, streamed to a
// hash; its RSS must stay within 64 MiB of what it was idle, and the bytes must come back intact.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";

const MiB = 1024 * 1024;
const SIZE = 512 * MiB;
const HEADROOM = 64 * MiB;

let child: ChildProcess;
const inbox: Record<string, unknown>[] = [];
const waiters: (() => void)[] = [];

/** The next message from the server process that has `key`. */
async function reply<T>(key: string): Promise<T> {
  for (;;) {
    const i = inbox.findIndex((m) => key in m);
    if (i >= 0) return inbox.splice(i, 1)[0] as T;
    await new Promise<void>((r) => waiters.push(r));
  }
}

async function ask<T>(message: object, key: string): Promise<T> {
  child.send(message);
  return reply<T>(key);
}

beforeAll(() => {
  const script = fileURLToPath(new URL("./memory-server.testlib.ts", import.meta.url));
  child = spawn(process.execPath, ["--import", "tsx", "--expose-gc", script], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  child.on("message", (m: Record<string, unknown>) => {
    inbox.push(m);
    waiters.splice(0).forEach((w) => w());
  });
});

afterAll(async () => {
  if (child.exitCode === null) {
    child.send({ exit: true });
    await new Promise((r) => child.once("exit", r));
  }
});

/** `total` bytes of random data made as they are sent (never held whole), hashed on the way. */
function generated(total: number, hash: ReturnType<typeof createHash>): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(c) {
      if (sent >= total) return c.close();
      const chunk = randomBytes(Math.min(MiB, total - sent));
      sent += chunk.length;
      hash.update(chunk);
      c.enqueue(chunk);
    },
  });
}

async function roundTrip(base: string, size: number): Promise<{ sent: string; got: string; type: string | null }> {
  const sentHash = createHash("sha256");
  const r = await fetch(base, {
    method: "POST",
    body: generated(size, sentHash),
    headers: { "content-type": "application/x-memory-test" },
    duplex: "half",
  } as RequestInit);
  expect(r.status).toBe(201);
  const id = ((await r.json()) as { request_id: string }).request_id;
  await ask({ finish: id }, "finished");
  const out = await fetch(`${base}/requests/${id}/output`);
  expect(out.status).toBe(200);
  const gotHash = createHash("sha256");
  for await (const chunk of out.body as unknown as AsyncIterable<Uint8Array>) gotHash.update(chunk);
  return { sent: sentHash.digest("hex"), got: gotHash.digest("hex"), type: out.headers.get("content-type") };
}

it("takes in and gives back a 512 MiB File with the server's RSS within 64 MiB of idle", async () => {
  const { port } = await reply<{ port: number }>("port");
  const base = `http://127.0.0.1:${port}/v1/namespaces/team/applications/greet`;
  // Warm-up: every code path loaded and compiled before the idle sample.
  const warm = await roundTrip(base, 4 * MiB);
  expect(warm.got).toBe(warm.sent);
  const { idleRss } = await ask<{ idleRss: number }>({ idle: true }, "idleRss");
  const started = Date.now();
  const big = await roundTrip(base, SIZE);
  const { peakRss } = await ask<{ peakRss: number }>({ stats: true }, "peakRss");
  const mib = (n: number) => (n / MiB).toFixed(1);
  console.log(
    `memory test: ${SIZE / MiB} MiB in and out in ${Date.now() - started} ms; server RSS idle ${mib(idleRss)} MiB, peak ${mib(peakRss)} MiB (+${mib(peakRss - idleRss)} MiB)`,
  );
  expect(big.type).toBe("application/x-memory-test");
  expect(big.got).toBe(big.sent);
  expect(peakRss - idleRss).toBeLessThan(HEADROOM);
}, 60_000);
