// The plugin's own Kubernetes client (cli/kube.ts) against the real apiserver: the kubeconfig
// from KUBECONFIG, JSON requests (create, get, list, merge patch, server-side apply, delete), the
// API's errors as KubeApiError, a watch through stream(), the request timeout, and a server that
// is not there (the CLI's "cannot reach the cluster"). Only ConfigMaps, in namespaces of its own.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from "vitest";
import { CliError, context, kube } from "../../cli/cluster.js";
import { KubeApiError, KubeClient, loadKubeConfig as loadCliKubeConfig } from "../../cli/kube.js";
import { createTestNamespace, deleteTestNamespace, kubeconfigPath, loadKubeConfig } from "./support/cluster.js";

interface ConfigMap {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    managedFields?: { manager?: string; operation?: string }[];
  };
  data?: Record<string, string>;
}

interface List<T> {
  metadata: { resourceVersion?: string };
  items: T[];
}

interface WatchEvent {
  type: string;
  object: ConfigMap;
}

const USER_AGENT = "cli-kube-test/0.0.0";
// Read before any test points KUBECONFIG elsewhere.
const realKubeconfig = kubeconfigPath();
const core = loadKubeConfig().makeApiClient(CoreV1Api);
const tmp = mkdtempSync(join(tmpdir(), "cli-kube-"));
const namespaces: string[] = [];
let client: KubeClient;
let ns: string;

const cms = (namespace: string, name?: string) => `/api/v1/namespaces/${namespace}/configmaps${name ? `/${name}` : ""}`;

const configMap = (name: string, data: Record<string, string>, labels?: Record<string, string>): ConfigMap => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, ...(labels ? { labels } : {}) },
  data,
});

/** A kubeconfig file in the temp dir whose one context points at `server`. */
function writeKubeconfig(file: string, server: string, currentContext = "x"): string {
  const path = join(tmp, file);
  writeFileSync(
    path,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server } }],
      users: [{ name: "u", user: { token: "x" } }],
      contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
      "current-context": currentContext,
    }),
  );
  return path;
}

/** The KubeApiError a promise rejects with (fails the test when it resolves or throws something else). */
async function apiError(p: Promise<unknown>): Promise<KubeApiError> {
  const err = await p.then(
    (v) => {
      throw new Error(`expected a KubeApiError, got an answer: ${JSON.stringify(v)?.slice(0, 200)}`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KubeApiError);
  return err as KubeApiError;
}

/** `p`, or a failure naming what did not happen within `ms`. */
async function within<T>(ms: number, what: string, p: Promise<T>, detail = () => ""): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms waiting for ${what} ${detail()}`.trimEnd())),
      ms,
    );
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

beforeAll(async () => {
  vi.stubEnv("KUBECONFIG", realKubeconfig);
  client = await KubeClient.create(loadCliKubeConfig(), { timeoutMs: 15_000, userAgent: USER_AGENT });
  ns = await createTestNamespace(core, "cli-kube");
  namespaces.push(ns);
});

afterEach(() => {
  // Every test starts from the real kubeconfig.
  vi.unstubAllEnvs();
  vi.stubEnv("KUBECONFIG", realKubeconfig);
});

afterAll(async () => {
  vi.unstubAllEnvs();
  rmSync(tmp, { recursive: true, force: true });
  await Promise.all(namespaces.map((n) => deleteTestNamespace(core, n)));
});

describe("cli/kube.ts loadKubeConfig", () => {
  it("reads the first file of KUBECONFIG, and says which file is missing", async () => {
    const kc = loadCliKubeConfig();
    expect(kc.getCurrentCluster()?.server).toBe(loadKubeConfig().getCurrentCluster()?.server);

    // Of a list of files, only the first one is read.
    const absent = join(tmp, "absent");
    vi.stubEnv("KUBECONFIG", `${realKubeconfig}:${absent}`);
    expect(loadCliKubeConfig().getCurrentCluster()?.server).toBe(kc.getCurrentCluster()?.server);
    vi.stubEnv("KUBECONFIG", `${absent}:${realKubeconfig}`);
    expect(() => loadCliKubeConfig()).toThrow(`kubeconfig ${absent}: file does not exist`);

    vi.stubEnv("KUBECONFIG", writeKubeconfig("no-cluster", "https://127.0.0.1:9", "missing-context"));
    expect(() => loadCliKubeConfig()).toThrow("kubeconfig: the current context names no cluster");
  });
});

describe("cli/kube.ts KubeClient on a real apiserver", () => {
  it("creates, gets and lists a ConfigMap", async () => {
    const created = await client.request<ConfigMap>("POST", cms(ns), {
      body: configMap("first", { a: "1" }, { "trellis.dev/test": "cli-kube" }),
    });
    expect(created.metadata).toMatchObject({ name: "first", namespace: ns });
    expect(created.metadata.uid).toBeTruthy();
    expect(created.data).toEqual({ a: "1" });
    // A create without fieldManager is recorded under the user agent's first segment: the header got through.
    expect(created.metadata.managedFields?.map((f) => [f.manager, f.operation])).toEqual([["cli-kube-test", "Update"]]);
    await client.request("POST", cms(ns), { body: configMap("unlabelled", { b: "2" }) });

    const got = await client.request<ConfigMap>("GET", cms(ns, "first"));
    expect(got.metadata.uid).toBe(created.metadata.uid);
    expect(got.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
    expect(got.data).toEqual({ a: "1" });

    // The query is encoded (the selector's "=", "/"), and undefined values are left out.
    const labelled = await client.request<List<ConfigMap>>("GET", cms(ns), {
      query: { labelSelector: "trellis.dev/test=cli-kube", limit: undefined },
    });
    expect(labelled.metadata.resourceVersion).toBeTruthy();
    expect(labelled.items.map((c) => c.metadata.name)).toEqual(["first"]);
    const all = await client.request<List<ConfigMap>>("GET", cms(ns));
    expect(all.items.map((c) => c.metadata.name)).toEqual(expect.arrayContaining(["first", "unlabelled"]));
  });

  it("changes data by merge patch and by server-side apply, and deletes", async () => {
    await client.request("POST", cms(ns), { body: configMap("patched", { a: "1", b: "1" }) });
    const merged = await client.request<ConfigMap>("PATCH", cms(ns, "patched"), {
      body: { data: { a: null, b: "2", c: "3" } },
      contentType: "application/merge-patch+json",
    });
    expect(merged.data).toEqual({ b: "2", c: "3" });

    // Server-side apply as cli/deploy.ts does it: JSON (which is YAML) as an apply patch.
    const apply = (data: Record<string, string>, manager: string, force: boolean) =>
      client.request<ConfigMap>("PATCH", cms(ns, "applied"), {
        body: configMap("applied", data),
        contentType: "application/apply-patch+yaml",
        query: { fieldManager: manager, force: force ? "true" : undefined },
      });
    const first = await apply({ x: "1", y: "1" }, "cli-kube-test", true); // apply creates
    expect(first.data).toEqual({ x: "1", y: "1" });
    expect(first.metadata.managedFields).toEqual([
      expect.objectContaining({ manager: "cli-kube-test", operation: "Apply" }),
    ]);
    // A field the manager no longer applies is removed: this is apply, not a merge.
    const second = await apply({ x: "2" }, "cli-kube-test", true);
    expect(second.data).toEqual({ x: "2" });
    expect(second.metadata.uid).toBe(first.metadata.uid);

    // Another manager changing x without force conflicts; with force it takes the field over.
    const conflict = await apiError(apply({ x: "3" }, "cli-kube-other", false));
    expect(conflict.statusCode).toBe(409);
    expect(conflict.reason).toBe("Conflict");
    expect(conflict.message).toMatch(/^PATCH \/api\/v1\/namespaces\/[^/]+\/configmaps\/applied: .*conflict/i);
    expect((await apply({ x: "3" }, "cli-kube-other", true)).data).toEqual({ x: "3" });

    await client.request("DELETE", cms(ns, "applied"));
    expect((await apiError(client.request("GET", cms(ns, "applied")))).statusCode).toBe(404);
    expect((await apiError(client.request("DELETE", cms(ns, "applied")))).reason).toBe("NotFound");
  });

  it("raises KubeApiError with the status, reason and a message naming method and path", async () => {
    const path = cms(ns, "missing");
    const notFound = await apiError(client.request("GET", path));
    expect(notFound.name).toBe("KubeApiError");
    expect(notFound.statusCode).toBe(404);
    expect(notFound.reason).toBe("NotFound");
    expect(notFound.message).toBe(`GET ${path}: configmaps "missing" not found`);

    await client.request("POST", cms(ns), { body: configMap("twice", { a: "1" }) });
    const exists = await apiError(client.request("POST", cms(ns), { body: configMap("twice", { a: "2" }) }));
    expect(exists.statusCode).toBe(409);
    expect(exists.reason).toBe("AlreadyExists");
    expect(exists.message).toBe(`POST ${cms(ns)}: configmaps "twice" already exists`);

    const invalid = await apiError(client.request("POST", cms(ns), { body: configMap("Not_A_Name", {}) }));
    expect(invalid.statusCode).toBe(422);
    expect(invalid.reason).toBe("Invalid");
    expect(invalid.message).toMatch(new RegExp(`^POST ${cms(ns)}: ConfigMap "Not_A_Name" is invalid`));

    // A streamed GET that the server refuses rejects the same way (here: the log of no pod).
    const logPath = `/api/v1/namespaces/${ns}/pods/nope/log`;
    const noPod = await apiError(client.stream(logPath, {}, new AbortController().signal));
    expect(noPod.statusCode).toBe(404);
    expect(noPod.reason).toBe("NotFound");
    expect(noPod.message).toBe(`GET ${logPath}: pods "nope" not found`);
  });

  it("streams a watch that sees a ConfigMap added and modified, and closes it on abort", async () => {
    const list = await client.request<List<ConfigMap>>("GET", cms(ns));
    const ac = new AbortController();
    onTestFinished(() => ac.abort());
    const res: IncomingMessage = await client.stream(
      cms(ns),
      {
        watch: "true",
        fieldSelector: "metadata.name=watched",
        resourceVersion: list.metadata.resourceVersion,
        timeoutSeconds: 60,
      },
      ac.signal,
    );
    expect(res.statusCode).toBe(200);
    const closed = new Promise<void>((resolve) => res.once("close", resolve));
    // One JSON event a line; the promise settles once a MODIFIED event came.
    const events: string[] = [];
    const modified = new Promise<void>((resolve, reject) => {
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (text: string) => {
        buf += text;
        for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          const ev = JSON.parse(line) as WatchEvent;
          events.push(`${ev.type} ${ev.object.metadata.name} v=${ev.object.data?.v}`);
          if (ev.type === "MODIFIED") resolve();
        }
      });
      res.on("end", () => reject(new Error(`the watch ended; events: ${events.join(", ")}`)));
      res.on("error", reject); // also how the abort below surfaces, once this has settled
    });
    modified.catch(() => undefined); // awaited below; a rejection before then is not unhandled

    // Both changes happen while the watch is open.
    await client.request("POST", cms(ns), { body: configMap("watched", { v: "1" }) });
    await client.request("PATCH", cms(ns, "watched"), {
      body: { data: { v: "2" } },
      contentType: "application/merge-patch+json",
    });
    await within(30_000, "a MODIFIED watch event", modified, () => `events: ${events.join(", ")}`);
    expect(events).toEqual(["ADDED watched v=1", "MODIFIED watched v=2"]);

    // Aborting the signal closes the connection.
    expect(res.destroyed).toBe(false);
    ac.abort();
    await within(10_000, "the watch to close after the abort", closed);
    expect(res.destroyed).toBe(true);
  });

  it("gives up on a request that gets no answer within timeoutMs", async () => {
    const slow = await KubeClient.create(loadCliKubeConfig(), { timeoutMs: 1_000, userAgent: USER_AGENT });
    const list = await client.request<List<ConfigMap>>("GET", cms(ns));
    // A watch of a name nothing has: the server answers nothing until its own timeout.
    const path = cms(ns);
    const started = Date.now();
    await expect(
      slow.request("GET", path, {
        query: {
          watch: "true",
          fieldSelector: "metadata.name=never",
          resourceVersion: list.metadata.resourceVersion,
          timeoutSeconds: 30,
        },
      }),
    ).rejects.toThrow(`GET ${path}: no answer within 1000 ms`);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe("cli/kube.ts with no server behind the kubeconfig", () => {
  it("fails with a network error, which the CLI turns into 'cannot reach the cluster'", async () => {
    vi.stubEnv("KUBECONFIG", writeKubeconfig("no-server", "https://127.0.0.1:9"));
    const nowhere = await KubeClient.create(loadCliKubeConfig(), { timeoutMs: 5_000, userAgent: USER_AGENT });

    // The client itself: the socket error, not a KubeApiError (there is no HTTP status).
    const err = await nowhere.request("GET", "/api").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(KubeApiError);
    expect((err as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
    await expect(nowhere.stream("/api", {}, new AbortController().signal)).rejects.toMatchObject({
      code: "ECONNREFUSED",
    });

    // The CLI's context and request wrapper (cli/cluster.ts): the sentence main.ts prints after "error: ".
    const ctx = await context({});
    expect(ctx.server).toBe("https://127.0.0.1:9");
    const cliErr = await kube(ctx, "GET", "/apis/trellis.dev/v1alpha1").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(cliErr).toBeInstanceOf(CliError);
    expect((cliErr as CliError).message).toMatch(
      /^cannot reach the cluster at https:\/\/127\.0\.0\.1:9: .*ECONNREFUSED.* \(check KUBECONFIG and that the cluster is running\)$/,
    );
  });
});
