// The web view (/ui/) in a real browser: Debian's Chromium driven by playwright-core, against an
// operator on the local cluster (from source, or the chart's with TRELLIS_E2E_OPERATOR=chart).
// The browser goes through `kubectl trellis ui` (the plugin's proxy on 127.0.0.1 that adds a
// viewer's token), as a user would; the page itself sends no credentials.
// A request whose calls sleep is watched live: its calls appear Running and turn Succeeded on the
// page; a failed call's traceback is shown. Screenshots go to .test-results/screenshots/.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { type BrowserContext, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace, kubeconfigPath, repoRoot, serviceAccountToken } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { deployApp } from "./support/trellis.js";

const API = `http://127.0.0.1:${process.env.TRELLIS_E2E_HTTP_PORT ?? 18080}`;
const SHOTS = join(repoRoot, ".test-results", "screenshots");
const CHROMIUM = process.env.TRELLIS_E2E_CHROMIUM ?? "/usr/bin/chromium";
const SOURCE = `
import time

from tensorlake.applications import application, function


@function()
def step(i: int) -> int:
    time.sleep(2)
    return i * 10


@function()
def explode(x: int) -> int:
    print(f"exploding at {x}", flush=True)
    raise ValueError(f"boom at {x}")


@application()
@function()
def slow(n: int) -> int:
    total = 0
    for i in range(n):
        total += step(i)
    return total


@application()
@function()
def broken(x: int) -> int:
    return explode(x) + 1


@application()
@function()
def fan(n: int) -> int:
    return sum(step.map(list(range(n))))
`;
const WAIT = { timeout: 120_000 };

let op: OperatorProcess;
let proxy: ChildProcess | undefined;
/** The proxy's origin: what the user's browser opens. */
let UI = "";
let ns = "";
let viewer = "";
let invoker = "";
let context: BrowserContext;
let page: Page;
let profile = "";
const pageErrors: string[] = [];

/** Starts `kubectl trellis ui --no-open` with the viewer's token; its origin once it listens. */
async function startProxy(token: string): Promise<string> {
  proxy = spawn(
    join(repoRoot, "bin/kubectl-trellis"),
    ["ui", "--api", API, "--token", token, "--port", "0", "--no-open"],
    { env: { ...process.env, KUBECONFIG: kubeconfigPath() }, stdio: ["ignore", "pipe", "inherit"] },
  );
  for await (const line of createInterface({ input: proxy.stdout! })) {
    const m = /^Serving the Trellis UI at (http:\/\/127\.0\.0\.1:\d+)\/ui\/ /.exec(line);
    if (m) return m[1]!;
  }
  throw new Error("kubectl trellis ui exited before it listened");
}
const mode = process.env.TRELLIS_E2E_OPERATOR === "chart" ? "chart" : "source";

async function invoke(app: string, body: unknown): Promise<string> {
  const r = await fetch(`${API}/v1/namespaces/${ns}/applications/${app}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", authorization: `Bearer ${invoker}` },
  });
  expect(r.status, await r.clone().text()).toBe(201);
  return ((await r.json()) as { request_id: string }).request_id;
}

/** WCAG contrast ratios of the phase badges on the page (text colour on badge colour). */
const BADGE_CONTRAST = `(() => {
  const lum = (c) => {
    const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map((v) => {
      const x = Number(v) / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  return [...document.querySelectorAll(".phase")].map((e) => {
    const s = getComputedStyle(e);
    const [hi, lo] = [lum(s.color), lum(s.backgroundColor)].sort((a, b) => b - a);
    return { text: e.textContent, ratio: (hi + 0.05) / (lo + 0.05) };
  });
})()`;
const lowContrast = async () =>
  ((await page.evaluate(BADGE_CONTRAST)) as { text: string; ratio: number }[]).filter((b) => b.ratio < 4.5);

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `ui-${mode}-${name}.png`), fullPage: true });
const node = (fn: string, phase?: string) =>
  page.locator(`svg .node[data-function="${fn}"]${phase ? `[data-phase="${phase}"]` : ""}`);

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  op = await startOperator("ui");
  ns = await createNamespace("ui");
  await deployApp(ns, "slow", SOURCE, "slow");
  await deployApp(ns, "broken", SOURCE, "broken");
  await deployApp(ns, "fan", SOURCE, "fan");
  viewer = await serviceAccountToken(ns, "viewer", [
    { verbs: "get,list", resource: "functioncalls.trellis.dev" },
    { verbs: "get,list", resource: "applications.trellis.dev" },
    { verbs: "get", resource: "pods/log" },
  ]);
  invoker = await serviceAccountToken(ns, "invoker", [{ verbs: "create,get", resource: "functioncalls.trellis.dev" }]);
  await promisify(execFile)("npm", ["run", "-s", "build:cli"], { cwd: repoRoot });
  UI = await startProxy(viewer);
  profile = mkdtempSync(join(tmpdir(), "trellis-ui-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1400, height: 1000 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => pageErrors.push(e.message));
});

afterAll(async () => {
  await context?.close();
  proxy?.kill("SIGTERM");
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (ns) await deleteNamespace(ns);
  await op?.stop();
});

describe(`web view in Chromium (${mode} operator)`, () => {
  it("shows a running request's calls appear Running and turn Succeeded, live", async () => {
    const id = await invoke("slow", 3);
    await page.goto(`${UI}/ui/#/ns/${ns}/apps/slow/requests/${id}`);
    // The first step runs while the later ones do not exist yet.
    await node("step", "Running").first().waitFor(WAIT);
    const drawnWhileRunning = await page.locator("svg .node").count();
    await shot("request-running");
    expect(await page.locator("#request-phase").innerText()).not.toMatch(/Succeeded|Failed/);
    // Live: no reload from here on.
    await expect.poll(() => node("step", "Succeeded").count(), { timeout: 120_000, interval: 500 }).toBe(3);
    await page.locator("#request-phase", { hasText: "Succeeded" }).waitFor(WAIT);
    expect(drawnWhileRunning).toBeLessThan(4);
    expect(await page.locator("svg .node").count()).toBe(4);
    // Phase as text next to the colour; durations, attempts and pods on each call.
    const text = await node("step").first().textContent();
    expect(text).toMatch(/phase: Succeeded/);
    expect(text).toMatch(/time: \d+(\.\d)? s · attempts: 1/);
    expect(text).toMatch(/pod: /);
    expect(await page.locator("#live").innerText()).toBe("Finished");
    // Keyboard only: Tab reaches the graph's nodes, Enter selects one and shows its details.
    let focused: unknown;
    for (let i = 0; i < 30 && focused !== "step"; i++) {
      await page.keyboard.press("Tab");
      focused = await page.evaluate(`document.activeElement?.getAttribute("data-function")`);
    }
    expect(focused).toBe("step");
    await page.keyboard.press("Enter");
    await page.locator(".details h2", { hasText: "Call step" }).waitFor();
    await shot("request-succeeded");

    // The request list: newest first, filtered by status and creation time.
    await page.goto(`${UI}/ui/#/ns/${ns}/apps/slow`);
    await page.locator(`tr[data-request="${id}"]`, { hasText: "Succeeded" }).waitFor(WAIT);
    await page.selectOption("#status-filter", "failure");
    await page.getByText("No requests.").waitFor();
    await page.selectOption("#status-filter", "success");
    await page.locator(`tr[data-request="${id}"]`).waitFor();
    // Created within the last hour: still there, with the status filter kept.
    await page.selectOption("#time-filter", "1h");
    await page.locator(`tr[data-request="${id}"]`).waitFor();
    expect(await page.locator("#status-filter").inputValue()).toBe("success");
    await shot("requests");
  });

  it("shows a failed call's error with its type, message and traceback", async () => {
    const id = await invoke("broken", 7);
    await page.goto(`${UI}/ui/#/ns/${ns}/apps/broken/requests/${id}`);
    const traceback = page.locator("pre.traceback", { hasText: "boom at 7" }).first();
    await traceback.waitFor(WAIT);
    expect(await traceback.innerText()).toMatch(/Traceback \(most recent call last\)[\s\S]*ValueError: boom at 7/);
    await node("explode", "Failed").waitFor();
    expect(await node("explode").textContent()).toMatch(/phase: Failed.*error: ValueError/);
    expect(await page.locator(".error", { hasText: "ValueError" }).first().innerText()).toMatch(
      /ValueError: boom at 7/,
    );
    // The failed call's worker log, read through the operator (get pods/log).
    await node("explode").click();
    await page.locator(".details h2", { hasText: "Call explode" }).waitFor();
    // Right after a quick call the kubelet may not have reported the worker started yet: the page
    // says so and offers to try again.
    const logs = page.locator('section[aria-label="Logs"]');
    await logs.getByRole("button", { name: "Show logs" }).click();
    await expect
      .poll(
        async () => {
          await logs.locator("pre.log, .problem").first().waitFor(WAIT);
          const text = await logs.innerText();
          if (!text.includes("exploding at 7")) await logs.getByRole("button", { name: "Try again" }).click();
          return text;
        },
        { timeout: 60_000, interval: 1000 },
      )
      .toMatch(/worker container of pod [\s\S]*exploding at 7/);
    await shot("request-failed");
    expect(await page.locator(".phase").count()).toBeGreaterThan(0);
    expect(await lowContrast()).toEqual([]);
  });

  it("folds a map's items into counts on the map's node", async () => {
    const id = await invoke("fan", 5);
    const map = page.locator('svg .node[data-kind="map"]');
    // A figure, not a bound: speed targets live in the bench (npm run bench -- --ui).
    const t0 = performance.now();
    await page.goto(`${UI}/ui/#/ns/${ns}/apps/fan/requests/${id}`);
    await map.waitFor(WAIT);
    console.log(`web view: first render of the map request page: ${(performance.now() - t0).toFixed(0)} ms (${mode})`);
    await page.locator("#request-phase", { hasText: "Succeeded" }).waitFor(WAIT);
    expect(await map.textContent()).toMatch(/items: 5 \(5 Succeeded\)/);
    // The items are not drawn one by one; the summary says how many calls were folded.
    expect(await page.locator('svg .node[data-kind="call"][data-function="step"]').count()).toBe(0);
    expect(await page.getByText("5 calls (map/reduce items, folded into counts)").count()).toBe(1);
    // Selecting the map opens its items: one row each, with its phase as text.
    await map.click();
    await expect.poll(() => page.locator('tr[data-item-row][data-phase="Succeeded"]').count(), WAIT).toBe(5);
    expect(await page.locator('section[aria-label="Logs"]').innerText()).toMatch(/No pod of its own/);
    expect(await page.locator("tr[data-item-row] td:first-child").allInnerTexts()).toEqual(["0", "1", "2", "3", "4"]);
    await shot("request-map");
  });

  it("lists the applications with their readiness and functions (after their code loaded)", async () => {
    await page.goto(`${UI}/ui/#/ns/${ns}`);
    const row = page.locator('tr[data-app="slow"]');
    await row.waitFor(WAIT);
    await expect
      .poll(
        async () => {
          await page.reload();
          await row.waitFor(WAIT);
          return row.innerText();
        },
        { timeout: 120_000, interval: 2_000 },
      )
      .toMatch(/Ready/);
    expect(await row.innerText()).toMatch(/step/);
    expect(await page.locator('tr[data-app="broken"]').count()).toBe(1);
    await shot("applications");
    expect(await lowContrast()).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
