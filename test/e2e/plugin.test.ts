// kubectl trellis on the local cluster, run as kubectl runs plugins (the bin launcher and the
// bundle npm builds): deploy a file, invoke it through the HTTP API and directly, then output,
// graph and logs; and the errors when the cluster or the operator is missing.
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace, kubeconfigPath, kubectl, repoRoot } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";

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

  it("says what is missing: an unknown application, no operator, no cluster", async () => {
    const app = await plugin(["invoke", "nope", "-n", ns]);
    expect(app.stderr).toContain(`error: application nope not found in namespace ${ns}`);
    const noOp = await plugin(["invoke", "calc", "-n", ns, "--operator-namespace", "no-such-ns"]);
    expect(noOp.code).toBe(1);
    expect(noOp.stderr).toContain("error: no Trellis operator is running: no operator lease in namespace no-such-ns");
    const cfg = join(dir, "kubeconfig");
    writeFileSync(
      cfg,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:9" } }],
        users: [{ name: "u", user: { token: "x" } }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        "current-context": "x",
      }),
    );
    const noCluster = await plugin(["graph", "r1"], { KUBECONFIG: cfg });
    expect(noCluster.code).toBe(1);
    expect(noCluster.stderr).toMatch(/^error: cannot reach the cluster at https:\/\/127\.0\.0\.1:9: /);
  });
});
