import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import type { Pod, PodActivity } from "../application/index.js";
import type { Call } from "../functioncall/index.js";
import { CallGraph } from "../functioncall/index.js";
import { mkCall } from "../functioncall/testing.js";
import { KeyedWorkQueue } from "../kube/workqueue.js";
import { createMetrics, podState } from "./index.js";

/** One sample's value from the text exposition, or undefined when absent. */
async function sample(m: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string> = {}) {
  const text = (await m.scrape()).body;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-z_:]+)(\{(.*)\})? (.+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const got = Object.fromEntries([...(match[3] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (
      Object.entries(labels).every(([k, v]) => got[k] === v) &&
      Object.keys(got).length === Object.keys(labels).length
    )
      return Number(match[4]);
  }
  return undefined;
}

function engineOf(graph: CallGraph, queued: Record<string, number> = {}, activity: Record<string, PodActivity> = {}) {
  return {
    graph,
    dispatcher: {
      queuedAndRunning: (ns: string, app: string, fn: string) => ({
        queued: queued[`${ns}/${app}/${fn}`] ?? 0,
        running: 0,
      }),
      podActivity: (ns: string, pod: string) => activity[`${ns}/${pod}`],
    },
  };
}

const withStatus = (c: Call, status: Call["status"]): Call => ({
  ...c,
  metadata: { ...c.metadata, resourceVersion: String(Number(c.metadata.resourceVersion) + 1000) },
  status,
});

describe("metrics", () => {
  it("counts finished calls and observes dispatch latency, with no call name in any label", async () => {
    const m = createMetrics({ defaultMetrics: false });
    m.engineHooks.finished("ns", "app", "f", "Succeeded");
    m.engineHooks.finished("ns", "app", "f", "Succeeded");
    m.engineHooks.finished("ns", "app", "g", "Failed");
    m.engineHooks.dispatched("ns", "app", "f", 250);
    m.engineHooks.settled("ns", "app", "link");
    m.engineHooks.settled("ns", "app", "link");
    expect(
      await sample(m, "trellis_function_calls_settled_total", {
        namespace: "ns",
        application: "app",
        function: "link",
      }),
    ).toBe(2);
    expect(
      await sample(m, "trellis_function_calls_total", {
        namespace: "ns",
        application: "app",
        function: "f",
        phase: "Succeeded",
      }),
    ).toBe(2);
    expect(
      await sample(m, "trellis_function_calls_total", {
        namespace: "ns",
        application: "app",
        function: "g",
        phase: "Failed",
      }),
    ).toBe(1);
    expect(await sample(m, "trellis_dispatch_latency_seconds_count", { application: "app", function: "f" })).toBe(1);
    expect(await sample(m, "trellis_dispatch_latency_seconds_sum", { application: "app", function: "f" })).toBe(0.25);
    expect(
      await sample(m, "trellis_dispatch_latency_seconds_bucket", { application: "app", function: "f", le: "0.1" }),
    ).toBe(0);
    expect(
      await sample(m, "trellis_dispatch_latency_seconds_bucket", { application: "app", function: "f", le: "0.25" }),
    ).toBe(1);
  });

  it("computes calls by phase and queue depth from the graph at scrape time", async () => {
    const m = createMetrics({ defaultMetrics: false });
    const graph = new CallGraph();
    m.attachEngine(engineOf(graph, { "ns/app/f": 3 }));
    graph.observe(mkCall("r1", {}, { phase: "Running" }));
    graph.observe(mkCall("r2", {}, { phase: "Queued" }));
    graph.observe(mkCall("r3", {}, { phase: "Queued" }));
    graph.observe(mkCall("r4", { function: "g" }));
    expect(
      await sample(m, "trellis_function_calls", {
        namespace: "ns",
        application: "app",
        function: "f",
        phase: "Queued",
      }),
    ).toBe(2);
    expect(
      await sample(m, "trellis_function_calls", {
        namespace: "ns",
        application: "app",
        function: "f",
        phase: "Running",
      }),
    ).toBe(1);
    expect(
      await sample(m, "trellis_function_calls", {
        namespace: "ns",
        application: "app",
        function: "g",
        phase: "Pending",
      }),
    ).toBe(1);
    expect(await sample(m, "trellis_queue_depth", { namespace: "ns", application: "app", function: "f" })).toBe(3);
    expect(await sample(m, "trellis_queue_depth", { namespace: "ns", application: "app", function: "g" })).toBe(0);
    // A deleted call leaves the gauge at the next scrape.
    graph.remove(mkCall("r4", { function: "g" }));
    expect(
      await sample(m, "trellis_function_calls", {
        namespace: "ns",
        application: "app",
        function: "g",
        phase: "Pending",
      }),
    ).toBeUndefined();
  });

  it("observes end-to-end request duration and retries by reason from status changes", async () => {
    let now = Date.parse("2026-01-01T00:00:10Z");
    const m = createMetrics({ defaultMetrics: false, now: () => now });
    const graph = new CallGraph();
    m.attachEngine(engineOf(graph));
    const root = mkCall("req", {}, { phase: "Running", attempts: 1 }, {
      creationTimestamp: "2026-01-01T00:00:00Z",
    } as Partial<Call["metadata"]>);
    graph.observe(root);
    const retried = withStatus(root, {
      phase: "Queued",
      attempts: 1,
      retryAfter: "2026-01-01T00:00:11Z",
      error: { type: "ValueError", message: "x", reason: "function_error" },
    });
    graph.observe(retried);
    const lost = withStatus(retried, { phase: "Queued", attempts: 2, infrastructureFailures: 1 });
    graph.observe(lost);
    now += 2_500;
    graph.observe(withStatus(lost, { phase: "Succeeded", attempts: 3 }));
    expect(
      await sample(m, "trellis_call_retries_total", { application: "app", function: "f", reason: "function_error" }),
    ).toBe(1);
    expect(
      await sample(m, "trellis_call_retries_total", { application: "app", function: "f", reason: "infrastructure" }),
    ).toBe(1);
    expect(await sample(m, "trellis_request_duration_seconds_count", { application: "app", phase: "Succeeded" })).toBe(
      1,
    );
    expect(await sample(m, "trellis_request_duration_seconds_sum", { application: "app", phase: "Succeeded" })).toBe(
      12.5,
    );
  });

  it("reports function pods by state", async () => {
    const m = createMetrics({ defaultMetrics: false });
    const pod = (name: string, phase: string, extra: Partial<Pod["metadata"]> = {}): Pod => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: "ns",
        labels: { "trellis.dev/application": "app", "trellis.dev/function": "f" },
        ...extra,
      },
      status: { phase },
    });
    const list = [
      pod("a", "Running"),
      pod("b", "Running"),
      pod("c", "Pending"),
      pod("d", "Running", { deletionTimestamp: new Date() }),
    ];
    m.attachEngine(
      engineOf(
        new CallGraph(),
        {},
        { "ns/a": { registered: true, running: 2 }, "ns/b": { registered: true, running: 0 } },
      ),
    );
    m.attachPods({ list: () => list, get: () => undefined, byIndex: () => [], synced: () => true });
    const state = (s: string) =>
      sample(m, "trellis_pods", { namespace: "ns", application: "app", function: "f", state: s });
    expect(await state("Busy")).toBe(1);
    expect(await state("Idle")).toBe(1);
    expect(await state("Pending")).toBe(1);
    expect(await state("Terminating")).toBe(1);
    expect(podState(pod("e", "Running"), undefined)).toBe("Starting");
  });

  it("times reconciles, counts their errors and reads work queue depth", async () => {
    const m = createMetrics({ defaultMetrics: false });
    const q = new KeyedWorkQueue({ name: "functioncalls", hooks: m.queueHooks("functioncalls") });
    m.attachQueue("functioncalls", q);
    expect(await sample(m, "trellis_reconcile_errors_total", { controller: "functioncalls" })).toBe(0);
    q.add("ns/a");
    q.add("ns/b");
    expect(await sample(m, "trellis_workqueue_depth", { queue: "functioncalls" })).toBe(2);
    let failedOnce = false;
    const done = new Promise<void>((resolve) => {
      const seen = new Set<string>();
      q.run(async (key) => {
        if (key === "ns/b" && !failedOnce) {
          failedOnce = true;
          throw new Error("boom");
        }
        seen.add(key);
        if (seen.size === 2) setImmediate(resolve);
      }, 1);
    });
    await done;
    await q.shutdown();
    expect(await sample(m, "trellis_reconcile_errors_total", { controller: "functioncalls" })).toBe(1);
    expect(await sample(m, "trellis_reconcile_duration_seconds_count", { controller: "functioncalls" })).toBe(3);
    expect(await sample(m, "trellis_workqueue_depth", { queue: "functioncalls" })).toBe(0);
  });

  it("labels runtime API requests by route template, follows leader status and watch restarts", async () => {
    const m = createMetrics({ defaultMetrics: false });
    const app = Fastify();
    m.instrumentServer(app);
    app.get("/runtime/v1/calls/:name", async () => ({ ok: true }));
    await app.inject({ method: "GET", url: "/runtime/v1/calls/abc" });
    await app.inject({ method: "GET", url: "/runtime/v1/calls/def" });
    await app.inject({ method: "GET", url: "/nope" });
    expect(
      await sample(m, "trellis_runtime_api_requests_total", { route: "/runtime/v1/calls/:name", code: "200" }),
    ).toBe(2);
    expect(await sample(m, "trellis_runtime_api_requests_total", { route: "unmatched", code: "404" })).toBe(1);
    expect(
      await sample(m, "trellis_runtime_api_request_duration_seconds_count", { route: "/runtime/v1/calls/:name" }),
    ).toBe(2);
    await app.close();
    // The public HTTP API gets its own names on the same registry.
    const api = Fastify();
    m.instrumentServer(api, "http_api");
    api.get("/v1/namespaces/:ns/applications", async () => []);
    await api.inject({ method: "GET", url: "/v1/namespaces/a/applications" });
    expect(
      await sample(m, "trellis_http_api_requests_total", { route: "/v1/namespaces/:ns/applications", code: "200" }),
    ).toBe(1);
    expect(
      await sample(m, "trellis_runtime_api_requests_total", { route: "/v1/namespaces/:ns/applications", code: "200" }),
    ).toBeUndefined();
    await api.close();

    expect(await sample(m, "trellis_leader")).toBe(0);
    m.setLeader(true);
    expect(await sample(m, "trellis_leader")).toBe(1);

    const stats = { watchRestarts: 1, watchdogRestarts: 0, watchErrors: 0, gone: 0 };
    m.attachInformer("functioncalls", { stats });
    m.attachInformer("functioncalls", { byNamespace: new Map([["a", { stats: { ...stats, watchErrors: 2 } }]]) });
    expect(await sample(m, "trellis_watch_restarts_total", { resource: "functioncalls" })).toBe(4);
    stats.watchdogRestarts = 1;
    expect(await sample(m, "trellis_watch_restarts_total", { resource: "functioncalls" })).toBe(5);
  });

  it("exports process metrics under the trellis_ prefix", async () => {
    const m = createMetrics();
    const text = (await m.scrape()).body;
    expect(text).toMatch(/^trellis_process_cpu_seconds_total /m);
    expect(text).toMatch(/^trellis_nodejs_eventloop_lag_seconds /m);
  });
});
