// The chart's ValidatingAdmissionPolicies on the real apiserver: rendered with the real helm,
// applied, and exercised by impersonating the operator's ServiceAccount and another user. The
// policies are cluster-scoped: they are bound to this test's namespace only and deleted after.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ASSIGNED_ANNOTATION, LABEL, POD_TOKEN_SECRET_SUFFIX, podTokenSecretName } from "../../protocol/index.js";
import { chartDir, helm } from "../support/helm.js";
import { applyCrds, createNamespace, deleteNamespace, kubectl, waitFor } from "../support/kube.js";

const RELEASE = "adm";
let ns = "";
let policies = "";
let operator = "";
let user = "";

const fc = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "trellis.dev/v1alpha1",
  kind: "FunctionCall",
  metadata: { name },
  spec: { application: "app", function: "f", ...spec },
});
const app = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "trellis.dev/v1alpha1",
  kind: "Application",
  metadata: { name },
  spec: { entrypoint: "main", source: { inline: "x = 1\n" }, ...spec },
});
const PICKLE = "gASVAAAAAAAAAAAu";

/** Creates `obj` as `as`; answers the error text, or "" when admitted. */
async function createAs(as: string, obj: object, dryRun = false): Promise<string> {
  const args = ["create", "-n", ns, `--as=${as}`, "-f", "-", ...(dryRun ? ["--dry-run=server"] : [])];
  try {
    await kubectl(args, JSON.stringify(obj));
    return "";
  } catch (e) {
    return String(e);
  }
}

beforeAll(async () => {
  await applyCrds();
  ns = await createNamespace("adm");
  operator = `system:serviceaccount:${ns}:${RELEASE}-trellis`;
  user = `system:serviceaccount:${ns}:someone`;
  for (const sa of [`${RELEASE}-trellis`, "someone"]) await kubectl(["create", "serviceaccount", "-n", ns, sa]);
  // Both may create what the policies judge: RBAC would allow it, admission decides.
  await kubectl([
    "create",
    "role",
    "-n",
    ns,
    "creator",
    "--verb=create,get,patch",
    "--resource=functioncalls.trellis.dev,applications.trellis.dev",
  ]);
  await kubectl([
    "create",
    "rolebinding",
    "-n",
    ns,
    "creator",
    "--role=creator",
    `--serviceaccount=${ns}:${RELEASE}-trellis`,
    `--serviceaccount=${ns}:someone`,
  ]);
  const { stdout } = await helm([
    "template",
    RELEASE,
    chartDir,
    "--namespace",
    ns,
    "--set",
    `operator.watchNamespaces={${ns}}`,
    "--show-only",
    "templates/admission-policies.yaml",
  ]);
  policies = stdout;
  await kubectl(["apply", "-f", "-"], policies);
  // A new policy is enforced once the apiserver has compiled it: poll with a dry run.
  await waitFor("the pickle policy to be enforced", async () =>
    (await createAs(user, fc("probe", { args: [{ pickle: PICKLE }] }), true)).includes("pickle values")
      ? true
      : undefined,
  );
  await waitFor("the settled-label policy to be enforced", async () =>
    (
      await createAs(
        user,
        { ...fc("probe", { args: [{ value: 1 }] }), metadata: { name: "probe", labels: { [LABEL.settled]: "true" } } },
        true,
      )
    ).includes("settled")
      ? true
      : undefined,
  );
  await waitFor("the secrets policy to be enforced", async () =>
    (await createAs(user, app("probe", { defaults: { secrets: [podTokenSecretName("p")] } }), true)).includes(
      "runtime token Secret",
    )
      ? true
      : undefined,
  );
}, 120_000);

afterAll(async () => {
  if (policies) await kubectl(["delete", "--ignore-not-found", "-f", "-"], policies);
  await deleteNamespace(ns);
});

describe("pickle values in FunctionCalls", () => {
  it("are denied to anyone but the operator's ServiceAccount, naming the field and the rule", async () => {
    const denied = await createAs(user, fc("root-1", { args: [{ value: 1 }, { pickle: PICKLE }] }));
    expect(denied).toContain(
      `spec.args: pickle values (at any depth of list items), and lists nested more than two levels deep, are accepted only from the operator's ServiceAccount ${operator}`,
    );
    expect(denied).toContain("Pass JSON values (value) instead");
    expect(await kubectl(["get", "functioncalls", "-n", ns, "-o", "name"])).toBe("");
  });

  it.each([
    ["spec.kwargs", { kwargs: { x: { pickle: PICKLE } } }],
    ["spec.args", { args: [{ list: [{ value: 1 }, { pickle: PICKLE }] }] }],
    ["spec.args", { args: [{ list: [{ list: [{ pickle: PICKLE }] }] }] }],
    ["spec.args", { args: [{ list: [{ list: [{ list: [] }] }] }] }],
    ["spec.map.items", { map: { items: [{ value: 1 }, { pickle: PICKLE }] } }],
    ["spec.reduce.items", { reduce: { items: [{ pickle: PICKLE }] } }],
    ["spec.reduce.initial", { reduce: { items: [{ value: 1 }], initial: { pickle: PICKLE } } }],
  ])("are denied in %s to others (%j)", async (field, spec) => {
    const denied = await createAs(user, fc("denied", spec), true);
    expect(denied).toContain(`${field}: pickle values`);
    // The same from the operator passes admission.
    expect(await createAs(operator, fc("admitted", spec), true)).toBe("");
  });

  it("are admitted from the operator's ServiceAccount; JSON values from anyone", async () => {
    expect(await createAs(operator, fc("root-op", { args: [{ pickle: PICKLE }] }))).toBe("");
    expect(await createAs(user, fc("root-json", { args: [{ value: 1 }, { list: [{ value: 2 }] }] }))).toBe("");
    const names = (await kubectl(["get", "functioncalls", "-n", ns, "-o", "name"])).trim().split("\n").sort();
    expect(names).toEqual(["functioncall.trellis.dev/root-json", "functioncall.trellis.dev/root-op"]);
    // An update that keeps the spec (a label) is not judged again, whoever makes it.
    await kubectl(["label", "functioncall", "-n", ns, "root-op", "x=y"]);
  });
});

describe("the settled label of FunctionCalls", () => {
  const settled = (name: string) => ({
    ...fc(name, { args: [{ value: 1 }] }),
    metadata: { name, labels: { [LABEL.settled]: "true" } },
  });
  it("is denied to anyone but the operator's ServiceAccount, on create and on update", async () => {
    const rule = `metadata.labels.trellis.dev/settled: set only by the operator's ServiceAccount ${operator}`;
    expect(await createAs(user, settled("settled-user"), true)).toContain(rule);
    expect(await createAs(operator, settled("settled-op"), true)).toBe("");
    expect(await createAs(user, fc("to-label", { args: [{ value: 1 }] }))).toBe("");
    const label = (as: string) =>
      kubectl(["label", "functioncall", "-n", ns, "to-label", `${LABEL.settled}=true`, `--as=${as}`]).then(
        () => "",
        (e: unknown) => String(e),
      );
    expect(await label(user)).toContain(rule);
    expect(await label(operator)).toBe("");
    // Once set, others' updates that keep it are admitted.
    expect(await kubectl(["label", "functioncall", "-n", ns, "to-label", "x=y", `--as=${user}`])).toBeDefined();
  });
});

describe("the assigned annotation of FunctionCalls", () => {
  const at = new Date().toISOString();
  const value = JSON.stringify({ pod: "p", attempt: 1, startTime: at, queuedTime: at });
  const assigned = (name: string) => ({
    ...fc(name, { args: [{ value: 1 }] }),
    metadata: { name, annotations: { [ASSIGNED_ANNOTATION]: value } },
  });
  it("is denied to anyone but the operator's ServiceAccount, on create and on update", async () => {
    const rule = `metadata.annotations.trellis.dev/assigned: set only by the operator's ServiceAccount ${operator}`;
    expect(await createAs(user, assigned("assigned-user"), true)).toContain(rule);
    expect(await createAs(operator, assigned("assigned-op"))).toBe("");
    expect(await createAs(user, fc("to-annotate", { args: [{ value: 1 }] }))).toBe("");
    const annotate = (name: string, as: string, v = value) =>
      kubectl([
        "annotate",
        "--overwrite",
        "functioncall",
        "-n",
        ns,
        name,
        `${ASSIGNED_ANNOTATION}=${v}`,
        `--as=${as}`,
      ]).then(
        () => "",
        (e: unknown) => String(e),
      );
    expect(await annotate("to-annotate", user)).toContain(rule);
    // Changing the operator's value is denied too; others' updates that keep it are admitted.
    expect(await annotate("assigned-op", user, value.replace('"p"', '"q"'))).toContain(rule);
    expect(await kubectl(["label", "functioncall", "-n", ns, "assigned-op", "x=y", `--as=${user}`])).toBeDefined();
    expect(await annotate("to-annotate", operator)).toBe("");
  });
});

describe("secrets of Applications", () => {
  it("the chart's suffix is the protocol's", () => {
    expect(policies).toContain(`!s.endsWith('${POD_TOKEN_SECRET_SUFFIX}')`);
  });

  it.each([
    [
      "a function's secrets",
      { functions: [{ name: "main", secrets: ["ok", podTokenSecretName("other-main-x1y2z")] }] },
    ],
    ["the defaults' secrets", { defaults: { secrets: [podTokenSecretName("other-main-x1y2z")] } }],
  ])("may not name a pod's runtime token Secret in %s, not even the operator", async (_where, spec) => {
    for (const as of [user, operator]) {
      const denied = await createAs(as, app("bad", spec), true);
      expect(denied).toContain(
        `spec.functions[].secrets, spec.defaults.secrets: may not name a pod runtime token Secret (a name ending with ${POD_TOKEN_SECRET_SUFFIX})`,
      );
    }
  });

  it("may not name the operator's key Secret in the operator's namespace", async () => {
    const denied = await createAs(user, app("bad", { defaults: { secrets: [`${RELEASE}-trellis-key`] } }), true);
    expect(denied).toContain(`may not name the operator's key Secret ${RELEASE}-trellis-key`);
  });

  it("admits Applications with users' own Secrets", async () => {
    const spec = { functions: [{ name: "main", secrets: ["hf-token", "common"] }], defaults: { secrets: ["db"] } };
    expect(await createAs(user, app("good", spec))).toBe("");
    expect(await kubectl(["get", "application", "-n", ns, "good", "-o", "name"])).toContain("good");
  });
});
