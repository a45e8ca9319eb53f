// kubectl trellis on the local cluster, run as kubectl runs plugins (the bin launcher and the
// bundle npm builds): deploy a file, invoke it through the HTTP API and directly, then output,
// graph and logs; and the errors when the cluster or the operator is missing.
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createNamespace,
  deleteNamespace,
  kubeconfigPath,
  kubectl,
  repoRoot,
  unreachableKubeconfig,
  waitFor,
} from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { invoke, waitFinished, waitPhase } from "./support/trellis.js";

const API = `http://127.0.0.1:${process.env.TRELLIS_E2E_HTTP_PORT ?? 18080}`;
const SOURCE = `
from tensorlake.applications import application, function


@function()
def double(x: int) -> int:
    print(f"doubling {x}", flush=True)
    return x * 2


@application()
@function()
def twice_plus_one(x: int) -> int:
    return double(x) + 1
`;

// Two applications in one file, and a module that prints at import time (stdout and stderr).
const MULTI = `
import sys
import time

from tensorlake.applications import application, function

print("loading the module", flush=True)
print('{"not": "the description"}')
print("warnings go here", file=sys.stderr)


@application()
@function()
def sleeper(seconds: int) -> int:
    time.sleep(seconds)
    return seconds


@application()
@function()
def echo_text(text: str) -> str:
    return text
`;

let op: OperatorProcess;
let ns = "";
let token = "";
const dir = mkdtempSync(join(tmpdir(), "trellis-plugin-"));

async function plugin(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await promisify(execFile)(join(repoRoot, "bin/kubectl-trellis"), args, {
      env: { ...process.env, KUBECONFIG: kubeconfigPath(), TRELLIS_API_URL: "", ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  await promisify(execFile)("npm", ["run", "-s", "build:cli"], { cwd: repoRoot });
  op = await startOperator("plugin");
  ns = await createNamespace("plugin");
  await kubectl(["create", "serviceaccount", "cli", "-n", ns]);
  await kubectl(["create", "role", "cli", "-n", ns, "--verb=create,get,list", "--resource=functioncalls.trellis.dev"]);
  await kubectl(["create", "rolebinding", "cli", "-n", ns, "--role=cli", `--serviceaccount=${ns}:cli`]);
  token = (await kubectl(["create", "token", "cli", "-n", ns, "--audience=trellis"])).trim();
});
afterAll(async () => {
  await deleteNamespace(ns);
  await op?.stop();
});

describe("kubectl trellis", () => {
  let request = "";

  it("deploys a Python file as an Application with inline code", async () => {
    const file = join(dir, "calc.py");
    writeFileSync(file, SOURCE);
    const r = await plugin(["deploy", file, "-n", ns, "--name", "calc"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain("application.trellis.dev/calc applied");
    const app = JSON.parse(await kubectl(["get", "application", "calc", "-n", ns, "-o", "json"]));
    expect(app.spec.entrypoint).toBe("twice_plus_one");
    expect(app.spec.source.inline).toBe(SOURCE);
  });

  it("invokes through the HTTP API and prints the output", async () => {
    const r = await plugin(["invoke", "calc", "-n", ns, "--input", "20", "--api", API, "--token", token]);
    expect(r.stderr).toMatch(new RegExp(`request calc-\\w+ created \\(via ${API}\\)`));
    expect(r.stderr).toMatch(/calc-\w+ Succeeded · calls 2 \(2 succeeded\)/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(41);
    request = /request (calc-\w+) created/.exec(r.stderr)![1]!;
  });

  it("invokes directly as a FunctionCall when no API is given", async () => {
    const r = await plugin(["invoke", "calc", "-n", ns, "-i", "1"]);
    expect(r.stderr).toContain("(via cluster)");
    expect(JSON.parse(r.stdout)).toBe(3);
  });

  it("falls back to the cluster when the API does not answer", async () => {
    const r = await plugin(["invoke", "calc", "-n", ns, "-i", "2", "--api", "http://127.0.0.1:9"]);
    expect(r.stderr).toContain("does not answer");
    expect(JSON.parse(r.stdout)).toBe(5);
  });

  it("prints a finished request's output, its call graph and a call's logs", async () => {
    const out = await plugin(["output", request, "-n", ns]);
    expect(out.stdout.trim()).toBe("41");
    const g = await plugin(["graph", request, "-n", ns]);
    const lines = g.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^CALL\s+FUNCTION\s+PHASE\s+DURATION\s+ATTEMPTS\s+POD$/);
    expect(lines[1]).toMatch(new RegExp(`^${request}\\s+twice_plus_one\\s+Succeeded\\s+\\S+\\s+1\\s+\\S+`));
    expect(lines[2]).toMatch(new RegExp(`^└─ ${request}-\\w+\\s+double\\s+Succeeded\\s+\\S+\\s+1\\s+calc-`));
    const child = /└─ (\S+)/.exec(lines[2]!)![1]!;
    const logs = await plugin(["logs", child, "-n", ns]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain("doubling 20");
  });

  it("lists an application's requests, newest first, as a table, JSON or YAML", async () => {
    const t = await plugin(["requests", "calc", "-n", ns]);
    expect(t.code).toBe(0);
    const lines = t.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^REQUEST\s+PHASE\s+AGE\s+DURATION\s+ERROR$/);
    expect(lines).toHaveLength(4); // three invokes, no child calls
    for (const l of lines.slice(1)) expect(l).toMatch(/^calc-\w+\s+Succeeded\s+\d+s\s+[\d.]+m?s\s*$/);
    expect(lines.at(-1)).toMatch(new RegExp(`^${request}\\s`)); // the first invoke is the oldest
    const json = JSON.parse((await plugin(["requests", "calc", "-n", ns, "-o", "json", "--limit", "2"])).stdout);
    expect(json.requests.map((r: { phase: string }) => r.phase)).toEqual(["Succeeded", "Succeeded"]);
    const yaml = await plugin(["requests", "calc", "-n", ns, "-o", "yaml", "--phase", "succeeded"]);
    expect(yaml.stdout).toMatch(/^requests:\n {2}- name: calc-/);
    const none = await plugin(["requests", "calc", "-n", ns, "--phase", "Failed"]);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe("");
    expect(none.stderr).toBe(`no requests in phase Failed of application calc in namespace ${ns}\n`);
    const g = JSON.parse((await plugin(["graph", request, "-n", ns, "-o", "json"])).stdout);
    expect(g.calls.map((c: { function: string; depth: number }) => [c.function, c.depth])).toEqual([
      ["twice_plus_one", 0],
      ["double", 1],
    ]);
    const bad = await plugin(["requests", "calc", "-n", ns, "-o", "wide"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('error: --output "wide": must be one of table, json, yaml\n');
  });

  it("deploys every @application() of a file on one shared code object; import-time prints are harmless", async () => {
    const file = join(dir, "multi.py");
    writeFileSync(file, MULTI);
    const refused = await plugin(["deploy", file, "-n", ns, "--name", "x"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("--name: ");
    expect(refused.stderr).toContain("defines several applications (sleeper, echo_text); --name needs one");
    const dry = await plugin(["deploy", file, "-n", ns, "--dry-run", "-o", "yaml"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^apiVersion: v1\nkind: List\nitems:\n/);
    const r = await plugin(["deploy", file, "-n", ns]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.slice(0, 2)).toEqual([
      `application.trellis.dev/sleeper applied in namespace ${ns} (entrypoint sleeper; functions sleeper, echo_text; from multi.py)`,
      `application.trellis.dev/echo-text applied in namespace ${ns} (entrypoint echo_text; functions sleeper, echo_text; from multi.py)`,
    ]);
    const code = /^configmap\/(multi-code-[0-9a-f]{10}) holds the code of sleeper, echo-text$/.exec(lines[2]!)?.[1];
    expect(code, lines[2]).toBeDefined();
    // One code object, shared: each Application refers to it, and it is owned by both.
    for (const [name, entrypoint] of [
      ["sleeper", "sleeper"],
      ["echo-text", "echo_text"],
    ]) {
      const app = JSON.parse(await kubectl(["get", "application", name!, "-n", ns, "-o", "json"]));
      expect(app.spec.entrypoint).toBe(entrypoint);
      expect(app.spec.source).toEqual({ configMapRef: { name: code, key: "app.py" } });
    }
    const cm = JSON.parse(await kubectl(["get", "configmap", code!, "-n", ns, "-o", "json"]));
    expect(cm.data["app.py"]).toBe(MULTI);
    expect(cm.immutable).toBe(true);
    expect(cm.metadata.ownerReferences.map((o: { name: string }) => o.name)).toEqual(["sleeper", "echo-text"]);
    // A change of the code makes a new object and removes the old one.
    const changed = `${MULTI}\n# changed\n`;
    writeFileSync(file, changed);
    const again = await plugin(["deploy", file, "-n", ns]);
    expect(again.code).toBe(0);
    const next = /configmap\/(multi-code-[0-9a-f]{10}) holds the code of sleeper, echo-text \(replaces (\S+)\)/.exec(
      again.stdout,
    );
    expect(next?.[2], again.stdout).toBe(code);
    expect(next![1]).not.toBe(code);
    await expect(kubectl(["get", "configmap", code!, "-n", ns])).rejects.toThrow(/NotFound|not found/);
    const one = await plugin(["invoke", "echo-text", "-n", ns, "-i", JSON.stringify("hi")]);
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toBe("hi");
  });

  it("cancels a running request: its calls are aborted and its graph goes", async () => {
    const running = await invoke(ns, "sleeper", "sleeper", [600]);
    await waitPhase(ns, running, "Running");
    const child = await plugin(["cancel", `${request}-nope`, "-n", ns]);
    expect(child.stderr).toContain(`FunctionCall ${request}-nope not found in namespace ${ns}`);
    const r = await plugin(["cancel", running, "-n", ns]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(`request ${running} cancelled (its calls are aborted and deleted)\n`);
    await waitFor(`request ${running} to be gone`, async () => {
      const out = await kubectl(["get", "fc", "-n", ns, "-o", "name"]);
      return out.includes(`/${running}\n`) || out.endsWith(`/${running}`) ? undefined : true;
    });
    const finished = await invoke(ns, "sleeper", "sleeper", [0]);
    expect((await waitFinished(ns, finished)).phase).toBe("Succeeded");
    const late = await plugin(["cancel", finished, "-n", ns]);
    expect(late.code).toBe(1);
    expect(late.stderr).toBe(`error: request ${finished} already finished (Succeeded); nothing to cancel\n`);
  });

  it("completes commands and names from the cluster for kubectl (kubectl_complete-trellis)", async () => {
    const env = { KUBECONFIG: kubeconfigPath() };
    const run = async (args: string[]) =>
      (
        await promisify(execFile)(join(repoRoot, "bin/kubectl_complete-trellis"), args, {
          env: { ...process.env, ...env },
        })
      ).stdout;
    expect(await run(["gr"])).toBe("graph\n:4\n");
    expect(await run(["invoke", "-n", ns, "ca"])).toBe("calc\n:4\n");
    const requests = (await run(["output", "-n", ns, "calc-"])).trim().split("\n");
    expect(requests.at(-1)).toBe(":4");
    expect(requests).toContain(request);
    expect(requests.filter((l) => l.startsWith("calc-"))).toHaveLength(3);
  });

  it("says what is missing: an unknown application, no operator, no cluster", async () => {
    const app = await plugin(["invoke", "nope", "-n", ns]);
    expect(app.stderr).toContain(`error: application nope not found in namespace ${ns}`);
    const noOp = await plugin(["invoke", "calc", "-n", ns, "--operator-namespace", "no-such-ns"]);
    expect(noOp.code).toBe(1);
    expect(noOp.stderr).toContain("error: no Trellis operator is running: no operator lease in namespace no-such-ns");
    const cfg = unreachableKubeconfig(dir);
    const noCluster = await plugin(["graph", "r1"], { KUBECONFIG: cfg });
    expect(noCluster.code).toBe(1);
    expect(noCluster.stderr).toMatch(/^error: cannot reach the cluster at https:\/\/127\.0\.0\.1:9: /);
  });
});
