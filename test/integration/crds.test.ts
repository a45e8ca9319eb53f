// The CRDs on a real apiserver: established, explained, and admission rejects bad manifests with
// a message that names the field.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyCrds, createNamespace, deleteNamespace, kubectl, waitFor } from "../support/kube.js";

let ns = "";

beforeAll(async () => {
  await applyCrds();
  ns = await createNamespace("crds");
});
afterAll(async () => {
  await deleteNamespace(ns);
});

const fc = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "trellis.dev/v1alpha1",
  kind: "FunctionCall",
  metadata: { name },
  spec,
});
const app = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "trellis.dev/v1alpha1",
  kind: "Application",
  metadata: { name },
  spec,
});

async function createFails(obj: object): Promise<string> {
  try {
    await kubectl(["create", "-n", ns, "-f", "-"], JSON.stringify(obj));
  } catch (e) {
    return String(e);
  }
  throw new Error(`created although invalid: ${JSON.stringify(obj)}`);
}

describe("CRDs on the apiserver", () => {
  it("are established with short names and printer columns", async () => {
    const out = await kubectl(["api-resources", "--api-group=trellis.dev", "-o", "wide"]);
    expect(out).toMatch(/applications\s+tapp,tapps\s+trellis.dev\/v1alpha1\s+true\s+Application/);
    expect(out).toMatch(/functioncalls\s+fc,fcs\s+trellis.dev\/v1alpha1\s+true\s+FunctionCall/);
    await kubectl(["create", "-n", ns, "-f", "-"], JSON.stringify(fc("printer", { application: "a", function: "f" })));
    const table = await kubectl(["get", "fc", "-n", ns]);
    expect(table.split("\n")[0]).toMatch(
      /NAME\s+APPLICATION\s+FUNCTION\s+PHASE\s+ATTEMPTS\s+POD\s+ITEMS\s+SUCCEEDED\s+FAILED\s+RUNNING\s+AGE/,
    );
  });

  it("kubectl explain shows the descriptions", async () => {
    const out = await kubectl(["explain", "functioncall.spec.args"]);
    expect(out).toContain("Positional arguments, in order.");
    expect(out).toMatch(/call\s+<string>\s+Name of a FunctionCall whose output is this value/);
    expect(out).toMatch(/pickle\s+<string>\s+Inline tagged pickle/);
    const app = await kubectl(["explain", "application.spec.functions.minContainers"]);
    expect(app).toContain("Containers kept running even when idle");
  });

  const invalid: [string, object, RegExp][] = [
    ["FunctionCall without application", fc("a1", { function: "f" }), /spec\.application: Required value/],
    [
      "function name not a Python identifier",
      fc("a2", { application: "a", function: "not-python" }),
      /spec\.function.*should match/,
    ],
    [
      "value with two forms",
      fc("a3", { application: "a", function: "f", args: [{ value: 1, call: "x" }] }),
      /spec\.args\[0\]: Too many: 2: must have at most 1 item/,
    ],
    [
      "value with no form",
      fc("a11", { application: "a", function: "f", args: [{}] }),
      /spec\.args\[0\]: Invalid value.*should have at least 1 properties/,
    ],
    [
      "map and reduce together",
      fc("a4", { application: "a", function: "f", map: { items: [] }, reduce: { items: [] } }),
      /spec.*map and reduce cannot both be set/,
    ],
    [
      "map with args",
      fc("a5", { application: "a", function: "f", args: [{ value: 1 }], map: { items: [] } }),
      /spec.*args and kwargs must be empty when map or reduce is set/,
    ],
    [
      "parent without request",
      fc("a6", { application: "a", function: "f", parent: "p", sequence: 0 }),
      /spec.*request is required when parent is set/,
    ],
    [
      "map with items and itemsFrom",
      fc("a7", { application: "a", function: "f", map: { items: [], itemsFrom: "x" } }),
      /spec\.map.*exactly one of items or itemsFrom/,
    ],
    [
      "more than 64 args",
      fc("a8", { application: "a", function: "f", args: Array.from({ length: 65 }, () => ({ value: 1 })) }),
      /spec\.args: Too many/,
    ],
    [
      "call reference not a name",
      fc("a9", { application: "a", function: "f", args: [{ call: "Bad_Name" }] }),
      /spec\.args\[0\]\.call.*should match/,
    ],
    [
      "timeout of zero",
      fc("a10", { application: "a", function: "f", timeoutSeconds: 0 }),
      /spec\.timeoutSeconds.*greater than or equal to 1/,
    ],
    [
      "minContainers above maxContainers",
      app("b1", { entrypoint: "main", module: "app", functions: [{ name: "f", minContainers: 3, maxContainers: 2 }] }),
      /spec\.functions\[0\].*minContainers must be <= maxContainers/,
    ],
    [
      "inline source and configMapRef",
      app("b2", { entrypoint: "main", source: { inline: "x=1", configMapRef: { name: "c" } } }),
      /spec\.source.*exactly one of inline or configMapRef/,
    ],
    ["no code at all", app("b3", { entrypoint: "main" }), /spec.*one of module, source or image must be set/],
    [
      "retry delays inverted",
      app("b4", {
        entrypoint: "main",
        module: "m",
        defaults: { retries: { initialDelaySeconds: 10, maxDelaySeconds: 1 } },
      }),
      /spec\.defaults\.retries.*maxDelaySeconds must be >= initialDelaySeconds/,
    ],
    [
      "unknown pull policy",
      app("b5", { entrypoint: "main", module: "m", imagePullPolicy: "Sometimes" }),
      /spec\.imagePullPolicy.*Unsupported value/,
    ],
    [
      "duplicate function names",
      app("b6", { entrypoint: "main", module: "m", functions: [{ name: "f" }, { name: "f" }] }),
      /spec\.functions\[1\].*Duplicate value/,
    ],
  ];
  it.each(invalid)("rejects at admission: %s", async (_what, obj, message) => {
    const err = await createFails(obj);
    expect(err).toMatch(message);
  });

  it("keeps a FunctionCall's spec immutable, while its status can change", async () => {
    await kubectl(
      ["create", "-n", ns, "-f", "-"],
      JSON.stringify(fc("immutable", { application: "a", function: "f", args: [{ value: 1 }] })),
    );
    const err = await kubectl([
      "patch",
      "fc",
      "immutable",
      "-n",
      ns,
      "--type=merge",
      "-p",
      '{"spec":{"function":"g"}}',
    ]).then(
      () => "",
      (e) => String(e),
    );
    expect(err).toMatch(/spec is immutable/);
    await kubectl([
      "patch",
      "fc",
      "immutable",
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"phase":"Queued"}}',
    ]);
    const phase = await waitFor("status patch", async () => {
      const p = await kubectl(["get", "fc", "immutable", "-n", ns, "-o", "jsonpath={.status.phase}"]);
      return p || undefined;
    });
    expect(phase).toBe("Queued");
  });
});
