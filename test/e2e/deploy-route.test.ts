// Tensorlake's deploy route on the local cluster: the multipart body its client sends (built here
// by hand; the suite with Tensorlake's real client is tensorlake-client.test.ts), checked by
// SubjectAccessReview for the caller's ServiceAccount, server-side applied to a real apiserver
// (CRD validation included), a redeploy that replaces the code ConfigMap, and DELETE.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type RoleRule,
  createNamespace,
  deleteNamespace,
  kubectl,
  serviceAccountToken,
  waitFor,
} from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";

const API = `http://127.0.0.1:${process.env.TRELLIS_E2E_HTTP_PORT ?? 18080}`;

let op: OperatorProcess;
let ns = "";
const tokens: Record<string, string> = {};

const serviceAccount = (name: string, rules: RoleRule[]) => serviceAccountToken(ns, name, rules);

/** A real zip of one module, made by Python's zipfile as Tensorlake's client makes it. */
async function codeZip(body: string, module = "app"): Promise<Buffer> {
  const script = `
import io, sys, zipfile
b = io.BytesIO()
with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(sys.argv[2] + ".py", sys.argv[1])
    m = '{"name": "%s", "module_import_name": "%s"}'
    z.writestr(".tensorlake_code_manifest.json",
               '{"functions": {"my_app": %s, "helper": %s}}' % (m % ("my_app", sys.argv[2]), m % ("helper", sys.argv[2])))
sys.stdout.write(b.getvalue().hex())
`;
  const { stdout } = await promisify(execFile)("python3", ["-c", script, body, module]);
  return Buffer.from(stdout, "hex");
}

const manifest = (images: Record<string, string> = {}) => ({
  name: "my_app",
  description: "",
  tags: {},
  version: "1",
  functions: Object.fromEntries(
    ["my_app", "helper"].map((f) => [f, { name: f, timeout_sec: 300, ...(images[f] ? { image: images[f] } : {}) }]),
  ),
  entrypoint: { function_name: "my_app", input_serializer: "json", output_serializer: "json" },
});

async function deploy(token: string, code: Buffer, m: unknown) {
  const form = new FormData();
  form.append("code", new Blob([new Uint8Array(code)]), "code.zip");
  form.append("code_content_type", "application/zip");
  form.append("application", JSON.stringify(m));
  form.append("upgrade_requests_to_latest_code", "false");
  return fetch(`${API}/v1/namespaces/${ns}/applications`, {
    method: "POST",
    body: form,
    headers: { authorization: `Bearer ${token}` },
  });
}

const getJson = async (args: string[]) => JSON.parse(await kubectl([...args, "-n", ns, "-o", "json"]));
const codeMaps = async () =>
  (await getJson(["get", "configmaps", "-l", "app.kubernetes.io/component=tensorlake-code"])).items as {
    metadata: { name: string; ownerReferences?: { uid: string }[] };
    immutable?: boolean;
    binaryData?: Record<string, string>;
  }[];

beforeAll(async () => {
  op = await startOperator("deploy-route");
  ns = await createNamespace("deploy");
  tokens.deployer = await serviceAccount("deployer", [
    { verbs: "create,patch,delete,get,list", resource: "applications.trellis.dev" },
    { verbs: "create,patch,delete", resource: "configmaps" },
    { verbs: "create,get", resource: "functioncalls.trellis.dev" },
  ]);
  tokens.appsOnly = await serviceAccount("apps-only", [
    { verbs: "create,patch,delete,get,list", resource: "applications.trellis.dev" },
  ]);
});
afterAll(async () => {
  await deleteNamespace(ns);
  await op?.stop();
});

describe("Tensorlake deploy route on the cluster", () => {
  it("refuses a caller who could not write the ConfigMap with kubectl", async () => {
    const r = await deploy(tokens.appsOnly!, await codeZip("x = 1\n"), manifest());
    expect(r.status).toBe(403);
    expect((await r.json()).message).toMatch(
      new RegExp(`system:serviceaccount:${ns}:apps-only may not \\w+ configmaps`),
    );
    expect(await codeMaps()).toEqual([]);
  });

  it("deploys, redeploys with new code and per-function images, and deletes", async () => {
    const v1 = await codeZip("V = 1\n");
    const r1 = await deploy(tokens.deployer!, v1, manifest());
    expect([r1.status, await r1.text()]).toEqual([200, "{}"]);
    const a1 = await getJson(["get", "application", "my-app"]);
    expect(a1.spec).toMatchObject({ entrypoint: "my_app", module: "code.zip" });
    expect(a1.metadata.annotations["trellis.dev/tensorlake-name"]).toBe("my_app");
    expect(JSON.parse(a1.metadata.annotations["trellis.dev/tensorlake-manifest"])).toEqual(manifest());
    const [cm1, ...more] = await codeMaps();
    expect(more).toEqual([]);
    expect(a1.spec.source.configMapRef).toEqual({ name: cm1!.metadata.name, key: "code.zip" });
    expect(cm1!.immutable).toBe(true);
    expect(Buffer.from(cm1!.binaryData!["code.zip"]!, "base64").equals(v1)).toBe(true);
    expect(cm1!.metadata.ownerReferences?.map((o) => o.uid)).toEqual([a1.metadata.uid]);

    const images = { my_app: "example.org/team/app:2", helper: "example.org/team/gpu:2" };
    const r2 = await deploy(tokens.deployer!, await codeZip("V = 2\n"), manifest(images));
    expect(r2.status).toBe(200);
    const a2 = await getJson(["get", "application", "my-app"]);
    expect(a2.metadata.uid).toBe(a1.metadata.uid);
    expect(a2.spec.image).toBeUndefined();
    expect(a2.spec.functions).toEqual([
      { name: "my_app", image: images.my_app },
      { name: "helper", image: images.helper },
    ]);
    const maps = await codeMaps();
    expect(maps.map((m) => m.metadata.name)).toEqual([a2.spec.source.configMapRef.name]);
    expect(maps[0]!.metadata.name).not.toBe(cm1!.metadata.name);

    const del = await fetch(`${API}/v1/namespaces/${ns}/applications/my_app`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${tokens.deployer}` },
    });
    expect(del.status).toBe(200);
    // The code goes with the Application (ownerReference garbage collection).
    await waitFor("the code ConfigMap to be garbage-collected", async () =>
      (await codeMaps()).length === 0 ? true : undefined,
    );
    const again = await fetch(`${API}/v1/namespaces/${ns}/applications/my_app`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${tokens.deployer}` },
    });
    expect(again.status).toBe(404);
  });

  it("runs the deployed code: the worker imports code.zip from the ConfigMap", async () => {
    const source = [
      "from tensorlake.applications import application, function",
      "",
      "@function()",
      "def helper(x: int) -> int:",
      "    return x * 2",
      "",
      "@application()",
      "@function()",
      "def my_app(x: int) -> int:",
      "    return helper(x) + 1",
      "",
    ].join("\n");
    const r = await deploy(tokens.deployer!, await codeZip(source, "shop_app"), manifest());
    expect(r.status).toBe(200);
    const auth = { authorization: `Bearer ${tokens.deployer}` };
    const inv = await fetch(`${API}/v1/namespaces/${ns}/applications/my_app`, {
      method: "POST",
      body: JSON.stringify(20),
      headers: { ...auth, "content-type": "application/json" },
    });
    expect(inv.status).toBe(201);
    const { request_id } = (await inv.json()) as { request_id: string };
    const out = await waitFor(
      "the request's output",
      async () => {
        const o = await fetch(`${API}/v1/namespaces/${ns}/applications/my_app/requests/${request_id}/output`, {
          headers: auth,
        });
        return o.status === 200 ? await o.json() : undefined;
      },
      180_000,
    ).catch(async (e) => {
      // What the pod and the Application say, so that a failure reads without the cluster.
      const dump = async (args: string[]) => kubectl([...args, "-n", ns]).catch((x: Error) => x.message);
      console.log(await dump(["get", "pods,fc", "-o", "wide"]));
      console.log(await dump(["describe", "pods"]));
      console.log(await dump(["logs", "-l", "trellis.dev/application=my-app", "--all-containers", "--tail=60"]));
      console.log(await dump(["get", "application", "my-app", "-o", "yaml"]));
      throw e;
    });
    expect(out).toBe(41);
  });
});
