// Tensorlake's own client against Trellis: the real `tensorlake` package from PyPI (pinned, in a
// venv the test makes and caches) deploys Tensorlake-style apps with ITS deploy_applications (every
// function on the stock runtime image, so it builds none) to the operator's HTTP API, then runs
// them with ITS run_remote_application: the seed examples, pydantic models in and out, a File in
// and out, a failing function (RequestFailed), a RequestError, progress over SSE, and deletion.
// The Python side is test/e2e/tensorlake/driver.py, which prints one JSON result line per call.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace, kubectl, repoRoot, waitFor } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { TENSORLAKE_VERSION, type TensorlakeVenv, tensorlakeVenv } from "./support/tensorlake-venv.js";
import { requestCalls, seedCases } from "./support/trellis.js";

const API = `http://127.0.0.1:${process.env.TRELLIS_E2E_HTTP_PORT ?? 18080}`;
/** The image the operator runs functions on when an Application names none (operator/src/config.ts). */
const RUNTIME_IMAGE = process.env.TRELLIS_RUNTIME_IMAGE ?? "localhost/trellis-runtime:dev";
const DRIVER = join(repoRoot, "test/e2e/tensorlake/driver.py");
const FEATURES = join(repoRoot, "test/e2e/tensorlake/apps/tensorlake_features.py");
const SEED_DIR = join(repoRoot, "runtime-image/python/tests/seed_examples");
const DRIVER_TIMEOUT_S = 90;

interface DriverError {
  type: string;
  message: string;
  mro?: string[];
}
interface DriverResult {
  ok: boolean;
  stage?: string;
  error?: DriverError;
  request_id?: string;
  output?: unknown;
  output_type?: string;
  applications?: string[];
  seconds?: number;
  sse?: { event: string | null; kind: string | null; data: unknown }[];
  /** The driver's stderr (the client's retries and warnings), for failure messages. */
  log: string;
}

/** One deploy target: a Python file deployed into a namespace of its own. */
interface Target {
  file: string;
  ns: string;
  deployed?: DriverResult;
  /** Why its Applications did not all become Ready, if they did not. */
  notReady?: string;
}

const { cases: seeds, failing: seedsFailing } = seedCases();
let op: OperatorProcess;
let venv: TensorlakeVenv;
let token = "";
const seedTargets = new Map<string, Target>();
let features: Target;

async function driver(ns: string, args: string[]): Promise<DriverResult> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TENSORLAKE_API_URL: API,
    TENSORLAKE_API_KEY: token,
    INDEXIFY_NAMESPACE: ns,
    TL_DRIVER_TIMEOUT: String(DRIVER_TIMEOUT_S),
    PYTHONDONTWRITEBYTECODE: "1",
  };
  // Tensorlake's package, not Trellis' shim of it, must be the one imported here.
  delete env.PYTHONPATH;
  delete env.VIRTUAL_ENV;
  const r = await promisify(execFile)(venv.python, [DRIVER, ...args], {
    env,
    timeout: (DRIVER_TIMEOUT_S * 2 + 30) * 1000,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((e: { stdout?: string; stderr?: string; message: string }) => ({
    stdout: e.stdout ?? "",
    stderr: `${e.stderr ?? ""}\n${e.message}`,
  }));
  const log = r.stderr.trim().split("\n").slice(-30).join("\n");
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return { ...(JSON.parse(last) as Omit<DriverResult, "log">), log };
  } catch {
    throw new Error(`driver ${args.join(" ")} printed no result line; stdout:\n${r.stdout}\nstderr:\n${log}`);
  }
}

function describeFailure(what: string, r: DriverResult, target?: Target): string {
  const lines = [
    `${what}: ${r.stage ?? "?"} raised ${r.error?.type}: ${r.error?.message}`,
    target?.deployed && !target.deployed.ok
      ? `deploy of ${target.file} had failed: ${target.deployed.error?.type}: ${target.deployed.error?.message}`
      : "",
    target?.notReady ? `its Applications were not Ready: ${target.notReady}` : "",
    `tensorlake client stderr:\n${r.log || "(empty)"}`,
    `operator log (${op.logPath}):\n${op.tail(25)}`,
  ];
  return lines.filter(Boolean).join("\n");
}

/** Runs the driver and requires success, with everything known about a failure in the message. */
async function succeed(target: Target, args: string[]): Promise<DriverResult> {
  const r = await driver(target.ns, args);
  if (!r.ok) {
    throw new Error(
      `${describeFailure(`driver ${args.join(" ")} in ${target.ns}`, r, target)}${await causes(target, r)}`,
    );
  }
  return r;
}

/** The errors of the request's failed FunctionCalls, which Tensorlake's RequestFailed does not carry. */
async function causes(target: Target, r: DriverResult): Promise<string> {
  if (!r.request_id) return "";
  const calls = await requestCalls(target.ns, r.request_id).catch(() => []);
  const failed = calls.filter((c) => c.status.error);
  return failed.length
    ? `\nfailed calls:\n${failed.map((c) => `${c.fn}: ${c.status.error?.type}: ${c.status.error?.message}`).join("\n")}`
    : "";
}

/** A ServiceAccount allowed to deploy and invoke in every namespace given; returns its token. */
async function clientToken(home: string, namespaces: string[]): Promise<string> {
  await kubectl(["create", "serviceaccount", "tensorlake-client", "-n", home]);
  const grant = async (ns: string) => {
    const role = "--resource=functioncalls.trellis.dev,applications.trellis.dev,configmaps,secrets";
    await kubectl([
      "create",
      "role",
      "tensorlake-client",
      "-n",
      ns,
      "--verb=get,list,watch,create,update,patch,delete",
      role,
    ]);
    const subject = `--serviceaccount=${home}:tensorlake-client`;
    await kubectl(["create", "rolebinding", "tensorlake-client", "-n", ns, "--role=tensorlake-client", subject]);
  };
  await Promise.all(namespaces.map(grant));
  return (
    await kubectl(["create", "token", "tensorlake-client", "-n", home, "--duration=1h", "--audience=trellis"])
  ).trim();
}

interface AppObject {
  metadata: { name: string; annotations?: Record<string, string> };
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

async function applications(ns: string): Promise<AppObject[]> {
  return (JSON.parse(await kubectl(["get", "applications", "-n", ns, "-o", "json"])) as { items: AppObject[] }).items;
}

const condition = (a: AppObject, type: string) => a.status?.conditions?.find((c) => c.type === type);
const isReady = (a: AppObject) => condition(a, "Ready")?.status === "True";
// A code-load failure is final for this code: there is no point waiting for it to become Ready.
const loadFailed = (a: AppObject) => condition(a, "Ready")?.reason === "CodeLoadFailed";

/** Waits until the namespace holds `count` Applications, all Ready; returns why not otherwise. */
async function waitReady(ns: string, count: number): Promise<string | undefined> {
  let seen: AppObject[] = [];
  await waitFor(
    `${count} Ready Applications in ${ns}`,
    async () => {
      seen = await applications(ns);
      return seen.length >= count && seen.every((a) => isReady(a) || loadFailed(a)) ? true : undefined;
    },
    150_000,
  ).catch(() => undefined);
  if (seen.length >= count && seen.every(isReady)) return undefined;
  const state = seen.map((a) => {
    const r = condition(a, "Ready");
    const loaded = condition(a, "CodeLoaded");
    const last = loaded?.message?.trim().split("\n").at(-1);
    const why = loadFailed(a) ? ` (CodeLoaded: ...${last})` : "";
    return `${a.metadata.name}: Ready=${r?.status ?? "?"} ${r?.reason ?? ""} ${r?.message ?? ""}${why}`;
  });
  return `${seen.length} of ${count} Applications${state.length ? `; ${state.join("; ")}` : ""}`;
}

async function deployTarget(t: Target): Promise<void> {
  const started = Date.now();
  t.deployed = await driver(t.ns, ["deploy", t.file, RUNTIME_IMAGE]);
  const deployed = (Date.now() - started) / 1000;
  if (t.deployed.ok) t.notReady = await waitReady(t.ns, t.deployed.applications?.length ?? 1);
  const name = t.file.split("/").pop();
  const ready = t.notReady ? "not Ready" : "Ready";
  console.log(
    `${name}: deploy ${t.deployed.ok ? "ok" : "failed"} in ${deployed} s, ${ready} after ${(Date.now() - started) / 1000} s`,
  );
}

beforeAll(async () => {
  venv = await tensorlakeVenv();
  console.log(
    `tensorlake ${TENSORLAKE_VERSION} venv at ${venv.dir}: ${venv.created ? "created" : "reused"} in ${venv.seconds} s`,
  );
  op = await startOperator("tensorlake-client");
  features = { file: FEATURES, ns: await createNamespace("tlc") };
  // Tensorlake names an application after its function: the seed files reuse `my_app` and `greet`,
  // so each file gets a namespace of its own.
  const files = [...new Set([...seeds, ...seedsFailing].map((c) => c.file))];
  const namespaces = await Promise.all(files.map(() => createNamespace("tls")));
  files.forEach((file, i) => seedTargets.set(file, { file: join(SEED_DIR, file), ns: namespaces[i]! }));
  const targets = [features, ...seedTargets.values()];
  token = await clientToken(
    features.ns,
    targets.map((t) => t.ns),
  );
  const started = Date.now();
  await Promise.all(targets.map(deployTarget));
  console.log(
    `deployed ${targets.length} files with tensorlake's deploy_applications in ${(Date.now() - started) / 1000} s`,
  );
});
afterAll(async () => {
  await Promise.all([features, ...seedTargets.values()].filter(Boolean).map((t) => deleteNamespace(t.ns)));
  await op?.stop();
});

describe(`Tensorlake's client (tensorlake==${TENSORLAKE_VERSION}) against the operator`, () => {
  it("deploys every file with deploy_applications and each Application becomes Ready", () => {
    const problems = [features, ...seedTargets.values()].flatMap((t) => {
      const name = t.file.split("/").pop();
      if (!t.deployed?.ok) {
        return [`${name}: ${t.deployed?.stage} raised ${t.deployed?.error?.type}: ${t.deployed?.error?.message}`];
      }
      return t.notReady ? [`${name}: ${t.notReady}`] : [];
    });
    expect(problems, `${problems.join("\n")}\noperator log (${op.logPath}):\n${op.tail(25)}`).toEqual([]);
    expect(features.deployed?.applications).toEqual(["fails", "progress_steps", "receipt", "shout", "strict"]);
  });

  describe.concurrent("seed examples, deployed and run unchanged", () => {
    it.for(seeds.map((c) => [`${c.file} ${c.app}(${JSON.stringify(c.args).slice(1, -1)})`, c] as const))(
      "%s",
      async ([, c], { expect }) => {
        const r = await succeed(seedTargets.get(c.file)!, ["run", c.app, JSON.stringify(c.args)]);
        expect(r.output).toEqual(c.expected);
      },
    );

    it.for(seedsFailing.map((c) => [`${c.file} ${c.app} (verbatim: NameError)`, c] as const))(
      "%s fails with RequestFailed",
      async ([, c], { expect }) => {
        const target = seedTargets.get(c.file)!;
        const r = await driver(target.ns, ["run", c.app, JSON.stringify(c.args)]);
        expect(r.ok, describeFailure(`${c.app} should fail at output()`, r, target)).toBe(false);
        expect({ stage: r.stage, type: r.error?.type }, describeFailure(c.app, r, target)).toEqual({
          stage: "output",
          type: "RequestFailed",
        });
        expect(r.error?.message).toBe(c.expected);
      },
    );
  });

  describe.concurrent("Tensorlake-style apps", () => {
    it("takes a pydantic model and returns one, built by the output type hint", async ({ expect }) => {
      const r = await succeed(features, ["case", "pydantic"]);
      expect(r.output_type).toBe("Receipt");
      expect(r.output).toEqual({
        __type__: "Receipt",
        value: { customer: "ada", skus: ["apple", "pear"], total: 8.5 },
      });
    });

    it("takes a File and a second argument, and returns a File with its content type", async ({ expect }) => {
      const r = await succeed(features, ["case", "file"]);
      expect(r.output).toEqual({
        __type__: "File",
        content_type: "text/markdown",
        content: "HELLO TRELLIS! (text/plain)",
      });
    });

    it("raises RequestFailed('function_error') when a function fails", async ({ expect }) => {
      const r = await driver(features.ns, ["case", "failing"]);
      expect(r.ok, describeFailure("fails(1) should fail at output()", r, features)).toBe(false);
      expect({ stage: r.stage, error: r.error }, describeFailure("fails(1)", r, features)).toEqual({
        stage: "output",
        error: expect.objectContaining({ type: "RequestFailed", message: "function_error" }),
      });
    });

    it("raises Tensorlake's RequestError with the function's message", async ({ expect }) => {
      const r = await driver(features.ns, ["case", "request-error"]);
      expect(r.ok, describeFailure("strict(-5) should fail at output()", r, features)).toBe(false);
      expect({ stage: r.stage, error: r.error }, describeFailure("strict(-5)", r, features)).toEqual({
        stage: "output",
        error: expect.objectContaining({ type: "RequestError", message: "n must be >= 0, got -5" }),
      });
      // Tensorlake's RequestError is a RequestFailed: callers catching the latter see both.
      expect(r.error?.mro).toContain("RequestFailed");
    });

    it("waits on the SSE progress stream: progress updates, then RequestFinished", async ({ expect }) => {
      const r = await succeed(features, ["case", "progress"]);
      expect(r.output).toBe("3 steps done");
      const kinds = (r.sse ?? []).map((e) => e.kind);
      const events = JSON.stringify(r.sse, null, 1);
      expect(kinds.at(-1), `the progress stream as read next to the client:\n${events}`).toBe("RequestFinished");
      const progress = (r.sse ?? [])
        .filter((e) => e.kind === "RequestProgressUpdated")
        .map((e) => JSON.stringify(e.data));
      expect(progress.length, `no RequestProgressUpdated event in:\n${events}`).toBeGreaterThan(0);
      expect(
        progress.every((p) => /step [123] of 3/.test(p)),
        events,
      ).toBe(true);
    });
  });

  it("deletes an application with the client's delete_application", async () => {
    const before = await applications(features.ns);
    const r = await succeed(features, ["delete", "strict"]);
    expect(r.ok).toBe(true);
    await waitFor(`an Application fewer in ${features.ns} after deleting strict`, async () =>
      (await applications(features.ns)).length === before.length - 1 ? true : undefined,
    );
    const gone = await driver(features.ns, ["run", "strict", "[1]"]);
    expect({ ok: gone.ok, type: gone.error?.type }, describeFailure("strict after delete", gone)).toEqual({
      ok: false,
      type: "RemoteAPIError",
    });
    expect(gone.error?.message).toMatch(/404/);
  });
});
