// npm run bench -- --ui: what the web view costs for a 10,000-call request, without a cluster.
// Server: graph.ts folding 10,000 calls (a map of 9,998 items, its parent and the root) into nodes,
// and the bytes of one `graph` update, against JSON.stringify of the raw call objects (what sending
// them unfolded would cost). Browser (Chromium via playwright-core, if present): the page served by
// the ui plugin on fake deps; first render and one update's re-render, baseline a 10-call request
// in the same run.
import { existsSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { chromium } from "playwright-core";
import { world } from "../operator/src/http-api/fakes.js";
import { buildHttpApi } from "../operator/src/http-api/index.js";
import type { CallObject } from "../operator/src/http-api/types.js";
import { requestGraph } from "../operator/src/http-api/ui/graph.js";

const CHROMIUM = process.env.TRELLIS_BENCH_CHROMIUM ?? "/usr/bin/chromium";

/** A request of `n` calls: root, one map call and n − 2 items (a few failed, some running). */
export function syntheticRequest(id: string, n: number): CallObject[] {
  const t = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 10).toISOString();
  const make = (name: string, spec: Partial<CallObject["spec"]>, status: CallObject["status"], at: number) =>
    ({
      apiVersion: "trellis.dev/v1alpha1",
      kind: "FunctionCall",
      metadata: { name, namespace: "team", creationTimestamp: t(at), uid: `${name}-uid`, resourceVersion: "1" },
      spec: { application: "greet", function: "hello", ...spec },
      status,
    }) as CallObject;
  const items = n - 2;
  const calls = [
    make(id, { args: [{ value: items }] as never }, { phase: "Running", attempts: 1, pod: "greet-hello-0" }, 0),
    make(
      `${id}-0`,
      { parent: id, request: id, sequence: 0, function: "step", map: { items: [] } as never },
      { phase: "Running" },
      1,
    ),
  ];
  for (let i = 0; i < items; i++) {
    const phase = i % 997 === 5 ? "Failed" : i < items * 0.8 ? "Succeeded" : i < items * 0.9 ? "Running" : "Queued";
    calls.push(
      make(
        `${id}-0-${i}`,
        { parent: `${id}-0`, request: id, sequence: i, function: "step", args: [{ value: i }] as never },
        {
          phase,
          attempts: phase === "Queued" ? 0 : 1,
          ...(phase === "Queued" ? {} : { pod: `greet-step-${i % 64}`, startTime: t(i + 2) }),
          ...(phase === "Succeeded" ? { completionTime: t(i + 50), output: { value: i * 10 } as never } : {}),
          ...(phase === "Failed"
            ? { error: { type: "ValueError", message: `boom at ${i}`, traceback: "Traceback …\nValueError" } }
            : {}),
        },
        i + 2,
      ),
    );
  }
  return calls;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function timed(fn: () => void, runs: number): number {
  fn(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

export interface UiFigures {
  server: { calls: number; graphMs: number; updateBytes: number; rawJsonMs: number; rawBytes: number };
  browser?: { calls: number; firstRenderMs: number; drawMs: number; updateRedrawMs: number }[];
  browserSkipped?: string;
}

function serverFigures(n: number): UiFigures["server"] {
  const calls = syntheticRequest("big", n);
  let g: ReturnType<typeof requestGraph> | undefined;
  const graphMs = timed(() => void JSON.stringify((g = requestGraph(calls))), 20);
  const rawJsonMs = timed(() => void JSON.stringify(calls), 20);
  return {
    calls: n,
    graphMs,
    updateBytes: Buffer.byteLength(JSON.stringify(g)),
    rawJsonMs,
    rawBytes: Buffer.byteLength(JSON.stringify(calls)),
  };
}

/** The page on `n` calls: goto → map node drawn; one draw's cost; the redraw after an update. */
async function browserFigures(n: number, browser: Awaited<ReturnType<typeof chromium.launch>>) {
  const w = world();
  const calls = syntheticRequest("big", n);
  for (const c of calls) w.calls.put(c);
  const app = await buildHttpApi({ ...w.deps, sseKeepAliveMs: 60_000 });
  try {
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${url}/ui/`); // the script compiled and cached: not part of the figure
    const t0 = performance.now();
    await page.goto(`${url}/ui/#/ns/team/apps/greet/requests/big`);
    await page.locator('svg .node[data-kind="map"]').waitFor({ timeout: 60_000 });
    const firstRenderMs = performance.now() - t0;
    const draws = () =>
      page.evaluate(() => performance.getEntriesByName("trellis:draw").map((e) => e.duration)) as Promise<number[]>;
    const before = (await draws()).length;
    // One item finishes: the server sends a graph update, the page redraws.
    const last = calls[calls.length - 1]!.metadata.name!;
    const succeeded = calls.filter((c) => c.spec.parent && c.status?.phase === "Succeeded").length;
    w.update(last, { phase: "Succeeded", completionTime: new Date().toISOString() });
    await page
      .locator('svg .node[data-kind="map"]', { hasText: new RegExp(`\\b${succeeded + 1} Succeeded`) })
      .waitFor({ timeout: 60_000 });
    const all = await draws();
    await page.close();
    return {
      calls: n,
      firstRenderMs,
      drawMs: all[0] ?? NaN,
      updateRedrawMs: all.length > before ? all[all.length - 1]! : NaN,
    };
  } finally {
    await app.close();
  }
}

export async function uiFigures(n = 10_000): Promise<UiFigures> {
  const server = serverFigures(n);
  if (!existsSync(CHROMIUM)) return { server, browserSkipped: `no Chromium at ${CHROMIUM}` };
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  try {
    const small = await browserFigures(10, browser);
    const big = await browserFigures(n, browser);
    return { server, browser: [small, big] };
  } finally {
    await browser.close();
  }
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "–");
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

export function printUiFigures(f: UiFigures): void {
  const s = f.server;
  console.log(`\nWeb view, a request of ${s.calls.toLocaleString("en")} calls (9,998 map items)`);
  console.log(`  server: graph.ts nodes + JSON of one update   ${f1(s.graphMs)} ms   ${kib(s.updateBytes)}`);
  console.log(`  baseline: JSON.stringify of the raw calls      ${f1(s.rawJsonMs)} ms   ${kib(s.rawBytes)}`);
  console.log(
    `  ratio: update bytes / raw bytes ${(s.updateBytes / s.rawBytes).toFixed(4)}, time ${(s.graphMs / s.rawJsonMs).toFixed(2)}`,
  );
  if (!f.browser) return void console.log(`  browser: skipped (${f.browserSkipped})`);
  console.log("  browser (Chromium)             first render   one draw   redraw after an update");
  for (const b of f.browser)
    console.log(
      `    ${String(b.calls).padStart(6)} calls${b.calls === 10 ? " (baseline)" : "           "}  ${f1(b.firstRenderMs).padStart(8)} ms  ${f1(b.drawMs).padStart(6)} ms  ${f1(b.updateRedrawMs).padStart(6)} ms`,
    );
  const [small, big] = f.browser as [NonNullable<UiFigures["browser"]>[0], NonNullable<UiFigures["browser"]>[0]];
  console.log(
    `    ratio 10,000 / 10: first render ${(big.firstRenderMs / small.firstRenderMs).toFixed(2)}, redraw ${(big.updateRedrawMs / small.updateRedrawMs).toFixed(2)}`,
  );
}
