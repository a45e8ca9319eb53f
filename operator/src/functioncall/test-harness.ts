// The whole engine on in-memory fakes, driven through the runtime API as sidecars would be.
import type { FastifyInstance } from "fastify";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  API_VERSION,
  type Application,
  type Assignment,
  type FunctionCallSpec,
  RUNTIME_API_PREFIX,
} from "../../../protocol/index.js";
import { FileBlobStore } from "../blobs/index.js";
import { type Cache, KeyedWorkQueue } from "../kube/index.js";
import { buildRuntimeApi, podToken } from "../runtime-api/index.js";
import type { Call } from "./calls.js";
import type { EngineConfig } from "./config.js";
import { type Engine, type EngineDeps, createEngine } from "./engine.js";
import { FakeCalls, FakeEvents } from "./fakes.js";
import type { ApplicationObject } from "./view.js";

export const KEY = "test-operator-key";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test responses are read field by field
type Json = any;

export interface Harness {
  api: FakeCalls;
  events: FakeEvents;
  /** The engine; `engine.runtimeApi` is an alias of `runtimeApi` for tests written before main.ts built it. */
  engine: Engine & { runtimeApi: FastifyInstance };
  /** The runtime API over `engine.runtimePort` (inject requests, or listen for real sidecars). */
  runtimeApi: FastifyInstance;
  blobDir: string;
  apps: Map<string, ApplicationObject>;
  /** pod name → function; every pod is in namespace "ns", application "app". */
  pods: Map<string, string>;
  createRoot(name: string, spec?: Partial<FunctionCallSpec>): Promise<Call>;
  call(name: string): Call | undefined;
  req(
    pod: string,
    method: "GET" | "POST" | "PUT",
    url: string,
    body?: unknown,
  ): Promise<{ status: number; json: () => Json }>;
  /** A sidecar's lease: answers 200 (checked) with the assignments it got. */
  lease(pod: string, capacity?: number, waitMs?: number): Promise<Assignment[]>;
  /** Root `name` of function f, leased by pod `pod` (made a pod of f): its assignment. */
  runRoot(name: string, pod?: string): Promise<Assignment>;
  /** A sidecar's result report for one attempt. */
  result(pod: string, call: string, attempt: number, output: unknown): Promise<{ status: number; json: () => Json }>;
  until<T>(what: string, f: () => T | undefined | false, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

export function apps(): Map<string, ApplicationObject> {
  return new Map();
}

export async function harness(
  config: Partial<EngineConfig> = {},
  app?: Partial<Application["spec"]>,
  extra: Partial<EngineDeps> = {},
): Promise<Harness> {
  const api = new FakeCalls();
  const events = new FakeEvents();
  const queue = new KeyedWorkQueue({ name: "calls" });
  const blobDir = mkdtempSync(join(tmpdir(), "trellis-engine-"));
  const appMap = new Map<string, ApplicationObject>();
  appMap.set("ns/app", {
    apiVersion: API_VERSION,
    kind: "Application",
    metadata: { name: "app", namespace: "ns" },
    spec: { entrypoint: "f", image: "img", ...app },
  });
  const applications: Cache<ApplicationObject> = {
    get: (k) => appMap.get(k),
    list: () => [...appMap.values()],
    byIndex: () => [],
    synced: () => true,
  };
  const pods = new Map<string, string>();
  const blobs = extra.blobs ?? new FileBlobStore(blobDir);
  const engine = createEngine({
    calls: api,
    applications,
    writer: api,
    events,
    queue,
    blobs,
    // Exact write lists in tests: no deferred waiting-phase writes unless a test asks for them.
    config: { waitingPhaseWriteAfterMs: 60_000, ...config },
    ...extra,
  });
  const runtimeApi = buildRuntimeApi(engine.runtimePort, {
    operatorKey: KEY,
    podIdentity: (ns, pod) =>
      ns === "ns" && pods.has(pod)
        ? { application: "app", function: pods.get(pod)!, uid: `uid-${pod}` }
        : "not a pod known to the operator",
    blobs,
  });
  queue.run(engine.reconciler, 4);
  engine.start();
  const h: Harness = {
    api,
    events,
    engine: { ...engine, runtimeApi },
    runtimeApi,
    blobDir,
    apps: appMap,
    pods,
    async createRoot(name, spec = {}) {
      return api.create<Call>({
        apiVersion: API_VERSION,
        kind: "FunctionCall",
        metadata: { name, namespace: "ns", labels: {} },
        spec: { application: "app", function: "f", ...spec },
      });
    },
    call: (name) => engine.graph.get("ns", name),
    async req(pod, method, url, body) {
      const headers: Record<string, string> = {
        "x-trellis-pod": `ns/${pod}`,
        authorization: `Bearer ${podToken(KEY, "ns", pod, `uid-${pod}`)}`,
      };
      const r = await runtimeApi.inject({
        method,
        url: RUNTIME_API_PREFIX + url,
        headers,
        ...(body === undefined ? {} : { payload: body as object }),
      });
      return { status: r.statusCode, json: () => r.json() };
    },
    async lease(pod, capacity = 1, waitMs = 2000) {
      const r = await h.req(pod, "POST", "/lease", { capacity, waitMs });
      if (r.status !== 200) throw new Error(`lease of ${pod} answered ${r.status}: ${JSON.stringify(r.json())}`);
      return r.json().assignments as Assignment[];
    },
    async runRoot(name, pod = "pf") {
      pods.set(pod, "f");
      await h.createRoot(name);
      const [a] = await h.lease(pod);
      if (a?.call !== name) throw new Error(`${pod} leased ${JSON.stringify(a)}, not the root ${name}`);
      return a;
    },
    result: (pod, call, attempt, output) => h.req(pod, "POST", `/calls/${call}/result`, { attempt, output }),
    async until(what, f, timeoutMs = 3000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const v = f();
        if (v !== undefined && v !== false) return v as never;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async close() {
      await queue.shutdown();
      await engine.stop();
      await runtimeApi.close();
      rmSync(blobDir, { recursive: true, force: true });
    },
  };
  return h;
}
