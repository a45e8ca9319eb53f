// The server process of memory.test.ts: the HTTP API (in-memory Kubernetes fakes) on a
// FileBlobStore in a temp dir, its RSS sampled every 50 ms. Run with `node --import tsx
// --expose-gc` and an IPC channel. Messages: it sends {port} once listening; {idle} (after the
// parent's warm-up) → {idleRss}; {finish: id} makes the request succeed with its first argument
// as its output → {finished}; {stats} → {idleRss, peakRss}; {exit} → it closes and exits.
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileBlobStore } from "../blobs/index.js";
import { world } from "./fakes.js";
import { buildHttpApi } from "./index.js";

type Message = { idle: true } | { finish: string } | { stats: true } | { exit: true };

const send = (m: object) => process.send!(m);
const w = world();
const dir = mkdtempSync(join(tmpdir(), "trellis-memory-"));
const app = await buildHttpApi({ ...w.deps, blobs: new FileBlobStore(dir) });
await app.listen({ host: "127.0.0.1", port: 0 });

let idleRss = 0;
let peakRss = 0;
const sampler = setInterval(() => {
  if (idleRss) peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 50);

process.on("message", (m: Message) => {
  void (async () => {
    if ("idle" in m) {
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((r) => setTimeout(r, 200));
      idleRss = peakRss = process.memoryUsage().rss;
      send({ idleRss });
    } else if ("finish" in m) {
      const call = w.calls.get(`team/${m.finish}`)!;
      w.update(m.finish, { phase: "Succeeded", output: call.spec.args![0]! });
      send({ finished: true });
    } else if ("stats" in m) {
      send({ idleRss, peakRss });
    } else {
      clearInterval(sampler);
      await app.close();
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    }
  })();
});
send({ port: (app.server.address() as AddressInfo).port });
