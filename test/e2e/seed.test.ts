// Every seed example end to end: its Application applied with inline source, a request created
// with kubectl, and the expected value read back from the root FunctionCall's status.output.
// Every Application is named with 63 characters (the CRD's limit) and requests are named as the
// HTTP API names them, so call names are 70 characters and their children's labels must be
// shortened: the shapes that once made the API server refuse grandchildren and hang the request.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace, kubectl, waitFor } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { appName, deployApp, invoke, longAppName, requestCalls, seedCases, waitFinished } from "./support/trellis.js";

const { cases, failing, sources } = seedCases();
let op: OperatorProcess;
let ns = "";
const app63 = (file: string) => longAppName(appName(file));

// Futures as map items and as reduce items: grandchildren of the request. `refused` is refused
// by a cluster policy (below), so a call of it can never be created.
const SHAPES = `
from tensorlake.applications import application, function

@function()
def inc(x: int) -> int:
    return x + 1

@function()
def square(x: int) -> int:
    return x * x

@function()
def add(a: int, b: int) -> int:
    return a + b

@function()
def refused(x: int) -> int:
    return x

@application()
@function()
def shapes(n: int) -> int:
    squares = square.map([inc.future(i) for i in range(n)])
    total = add.reduce([square.future(i) for i in range(n)], 0)
    return sum(squares) + total

@function()
def calls_refused(x: int) -> int:
    return refused(x) + 1
`;
const SHAPES_APP = longAppName("shapes");
const POLICY_RULE = "the function refused may not be called in this namespace (e2e policy)";
const policyName = () => `trellis-e2e-refuse-${ns}`;

/** A policy of the cluster that refuses FunctionCalls of `refused` in the test namespace only. */
async function refuseFunction(): Promise<void> {
  const policy = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata: { name: policyName() },
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        resourceRules: [
          { apiGroups: ["trellis.dev"], apiVersions: ["*"], operations: ["CREATE"], resources: ["functioncalls"] },
        ],
      },
      validations: [{ expression: "object.spec.function != 'refused'", message: POLICY_RULE }],
    },
  };
  const binding = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name: policyName() },
    spec: {
      policyName: policyName(),
      validationActions: ["Deny"],
      matchResources: { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } } },
    },
  };
  await kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: [policy, binding] }));
  // Policies take effect a moment after they are stored: wait until a dry run is refused.
  const probe = JSON.stringify({
    apiVersion: "trellis.dev/v1alpha1",
    kind: "FunctionCall",
    metadata: { name: "probe", namespace: ns },
    spec: { application: SHAPES_APP, function: "refused" },
  });
  await waitFor(
    "the e2e admission policy to refuse calls of `refused`",
    () =>
      kubectl(["create", "--dry-run=server", "-f", "-"], probe).then(
        () => undefined,
        (e: Error) => (e.message.includes(POLICY_RULE) ? true : undefined),
      ),
    30_000,
  );
}

beforeAll(async () => {
  op = await startOperator("seed");
  ns = await createNamespace("seed");
  for (const file of Object.keys(sources)) {
    const entry = [...cases, ...failing].find((c) => c.file === file)!.app;
    await deployApp(ns, app63(file), sources[file]!, entry);
  }
  await deployApp(ns, SHAPES_APP, SHAPES, "shapes");
  await refuseFunction();
});
afterAll(async () => {
  await kubectl([
    "delete",
    "validatingadmissionpolicybinding,validatingadmissionpolicy",
    policyName(),
    "--ignore-not-found",
  ]).catch(() => undefined);
  await deleteNamespace(ns);
  await op?.stop();
});

const withLog = (e: Error) => {
  throw new Error(`${e.message}\noperator log ${op.logPath}:\n${op.tail()}`);
};

describe("seed examples on the cluster (63-character application names)", () => {
  it("every application name is 63 characters, distinct per file", () => {
    const names = Object.keys(sources).map(app63);
    expect(names.every((n) => n.length === 63)).toBe(true);
    expect(new Set(names).size).toBe(names.length);
  });

  it.each(cases.map((c) => [`${c.file} ${c.app}(${JSON.stringify(c.args).slice(1, -1)})`, c] as const))(
    "%s",
    async (_name, c) => {
      const req = await invoke(ns, app63(c.file), c.app, c.args);
      const status = await waitFinished(ns, req).catch(withLog);
      expect(status.error, JSON.stringify(status.error)).toBeUndefined();
      expect(status.phase).toBe("Succeeded");
      expect(status.output?.value).toEqual(c.expected);
      const calls = await requestCalls(ns, req);
      expect(calls.every((k) => k.status.phase === "Succeeded" || k.status.phase === "Delegated")).toBe(true);
    },
  );

  it.each(failing.map((c) => [`${c.file} ${c.app} (verbatim, fails)`, c] as const))("%s", async (_name, c) => {
    const req = await invoke(ns, app63(c.file), c.app, c.args);
    const status = await waitFinished(ns, req);
    expect(status.phase).toBe("Failed");
    expect(status.error?.type).toBe("NameError");
    expect(status.error?.message).toContain("asyncio");
    expect(status.error?.traceback).toContain("Traceback");
    expect(status.error?.reason).toBe(c.expected);
  });
});

describe("long names and refused objects", () => {
  it("a map and a reduce of futures finish in a 63-character application (70-character call names)", async () => {
    const req = await invoke(ns, SHAPES_APP, "shapes", [4]);
    expect(req.length).toBe(53);
    const status = await waitFinished(ns, req).catch(withLog);
    expect(status.error, JSON.stringify(status.error)).toBeUndefined();
    expect(status.output?.value).toBe(30 + 14);
    const calls = await requestCalls(ns, req);
    // root, 4 inc, the map and its 4 items, 4 square, the reduce and its 4 steps
    expect(calls.length).toBe(19);
    expect(calls.every((k) => k.status.phase === "Succeeded")).toBe(true);
    const listed = JSON.parse(
      await kubectl(["get", "fc", "-n", ns, "-l", `trellis.dev/request=${req}`, "-o", "json"]),
    ) as { items: { metadata: { labels: Record<string, string> } }[] };
    const labels = listed.items.map((i) => i.metadata.labels);
    expect(labels.length).toBe(calls.length);
    expect(labels.every((l) => Object.values(l).every((v) => v.length <= 63))).toBe(true);
  });

  it("a child the API server refuses fails the request within seconds, naming the object and the rule", async () => {
    const req = await invoke(ns, SHAPES_APP, "calls_refused", [1]);
    const status = await waitFinished(ns, req, 120_000).catch(withLog);
    // From the start of the attempt that made the child to the request's failure.
    const seconds = (Date.parse(status.completionTime!) - Date.parse(status.startTime!)) / 1000;
    expect(status.phase).toBe("Failed");
    expect(status.error).toMatchObject({ type: "ObjectRefused", reason: "invalid_call" });
    expect(status.error?.message).toMatch(
      new RegExp(`refused to create FunctionCall ${ns}/${req}-[a-z2-7]{16} \\(4\\d\\d \\w+\\)`),
    );
    expect(status.error?.message).toContain(POLICY_RULE);
    expect(seconds).toBeLessThan(15);
  });
});
