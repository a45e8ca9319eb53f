import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { FastifyInstance } from "fastify";
import { applicationObjectName, applicationRef, silentLogger } from "../../../../protocol/index.js";
import { KubeApiError, type KubeObject } from "../../kube/index.js";
import { mapBlobs } from "../fakes.js";
import { KubernetesAuthorizer, allowAll, buildHttpApi } from "../index.js";
import { type CodeConfigMap, type DeployStore, kubeDeployStore } from "../deploy-store.js";
import type { AccessCheck, ApplicationObj, Authorizer, HttpApiDeps } from "../types.js";
import { CODE_LIMIT_BYTES } from "./deploy.js";

/** An API server in miniature: server-side apply merges into stored objects and assigns uids. */
class FakeStore implements DeployStore {
  readonly objects = new Map<string, KubeObject>();
  readonly log: string[] = [];
  private uids = 0;
  private key = (kind: string | undefined, ns: string | undefined, name: string | undefined) => `${kind}/${ns}/${name}`;
  getApplication = async (ns: string, name: string) =>
    this.objects.get(this.key("Application", ns, name)) as ApplicationObj | undefined;
  apply = async <T extends KubeObject>(obj: T): Promise<T> => {
    const k = this.key(obj.kind, obj.metadata.namespace, obj.metadata.name);
    this.log.push(`apply ${k}${obj.metadata.ownerReferences ? " owned" : ""}`);
    const old = this.objects.get(k);
    const uid = old?.metadata.uid ?? `uid-${++this.uids}`;
    const next = structuredClone({ ...obj, metadata: { ...obj.metadata, uid } });
    this.objects.set(k, next);
    return next;
  };
  listCodeConfigMaps = async (ns: string, app: string) =>
    [...this.objects.values()].filter(
      (o) =>
        o.kind === "ConfigMap" &&
        o.metadata.namespace === ns &&
        o.metadata.labels?.["trellis.dev/application"] === app &&
        o.metadata.labels?.["app.kubernetes.io/component"] === "tensorlake-code",
    ) as CodeConfigMap[];
  deleteConfigMap = async (ns: string, name: string) => {
    this.log.push(`delete ConfigMap/${ns}/${name}`);
    this.objects.delete(this.key("ConfigMap", ns, name));
  };
  deleteApplication = async (ns: string, name: string) => {
    this.log.push(`delete Application/${ns}/${name}`);
    return this.objects.delete(this.key("Application", ns, name));
  };
  app = (name: string) => this.objects.get(this.key("Application", "team", name)) as ApplicationObj | undefined;
  configMaps = () => [...this.objects.values()].filter((o) => o.kind === "ConfigMap") as CodeConfigMap[];
}

const emptyCache = { get: () => undefined, list: () => [], byIndex: () => [], synced: () => true };

function world(authorizer: Authorizer = allowAll) {
  const store = new FakeStore();
  const deps: HttpApiDeps = {
    calls: emptyCache,
    applications: emptyCache,
    watchCall: () => () => {},
    createCall: async (c) => c,
    getCall: async () => undefined,
    deleteCall: async () => {},
    blobs: mapBlobs(),
    deploy: store,
    authorizer,
    log: silentLogger,
  };
  return { deps, store };
}

/** Records every check and denies the ones `deny` matches. */
function recordingAuthorizer(deny: (c: AccessCheck) => boolean = () => false) {
  const checks: string[] = [];
  const authorizer: Authorizer = {
    authorize: async (token, c) => {
      checks.push(`${token} ${c.verb} ${c.resource} ${c.namespace}`);
      return deny(c)
        ? { allowed: false, status: 403, message: `ada may not ${c.verb} ${c.resource} in namespace ${c.namespace}` }
        : { allowed: true, user: "ada" };
    },
  };
  return { authorizer, checks };
}

const zip = (text: string) => Buffer.concat([Buffer.from("PK\x03\x04", "latin1"), Buffer.from(text)]);
const sha10 = (b: Buffer) => createHash("sha256").update(b).digest("hex").slice(0, 10);

function manifest(over: Record<string, unknown> = {}, images: Record<string, string | null> = {}) {
  const fns = ["my_app", "helper"];
  return {
    name: "my_app",
    description: "",
    tags: {},
    version: "1",
    functions: Object.fromEntries(
      fns.map((f) => [f, { name: f, timeout_sec: 300, ...(f in images ? { image: images[f] } : {}) }]),
    ),
    entrypoint: { function_name: "my_app", input_serializer: "json", output_serializer: "json" },
    ...over,
  };
}

/** The multipart body Tensorlake's client sends (reqwest Form: a file part and three text parts). */
async function deployBody(
  code: Buffer,
  m: unknown,
  o: { contentType?: string; upgrade?: string; manifestText?: string } = {},
) {
  const form = new FormData();
  form.append("code", new Blob([new Uint8Array(code)]), "code.zip");
  form.append("code_content_type", o.contentType ?? "application/zip");
  form.append("application", o.manifestText ?? JSON.stringify(m));
  form.append("upgrade_requests_to_latest_code", o.upgrade ?? "false");
  const req = new Request("http://x", { method: "POST", body: form });
  return {
    payload: Buffer.from(await req.arrayBuffer()),
    headers: { "content-type": req.headers.get("content-type")!, authorization: "Bearer tok" },
  };
}

const URL = "/v1/namespaces/team/applications";
let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function deploy(w: ReturnType<typeof world>, code: Buffer, m: unknown, o = {}) {
  app ??= await buildHttpApi(w.deps);
  return app.inject({ method: "POST", url: URL, ...(await deployBody(code, m, o)) });
}

describe("POST /v1/namespaces/:ns/applications (Tensorlake deploy)", () => {
  it("applies the code ConfigMap and the Application, then owns the code by the new Application", async () => {
    const w = world();
    const code = zip("v1");
    const m = manifest({}, { my_app: "example.org/app:1", helper: "example.org/app:1" });
    const r = await deploy(w, code, m);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({});
    const cmName = `my-app-code-${sha10(code)}`;
    // Code first (no pod waits for its volume), the owner reference once the Application has a uid.
    expect(w.store.log).toEqual([
      `apply ConfigMap/team/${cmName}`,
      "apply Application/team/my-app",
      `apply ConfigMap/team/${cmName} owned`,
    ]);
    const a = w.store.app("my-app")!;
    expect(a.spec).toEqual({
      entrypoint: "my_app",
      module: "code.zip",
      source: { configMapRef: { name: cmName, key: "code.zip" } },
      image: "example.org/app:1",
    });
    expect(a.metadata.annotations?.["trellis.dev/tensorlake-name"]).toBe("my_app");
    // Verbatim: the manifest route answers with exactly what the client sent.
    expect(a.metadata.annotations?.["trellis.dev/tensorlake-manifest"]).toBe(JSON.stringify(m));
    const [cm] = w.store.configMaps();
    expect(cm).toMatchObject({
      immutable: true,
      binaryData: { "code.zip": code.toString("base64") },
      metadata: {
        name: cmName,
        labels: {
          "trellis.dev/application": "my-app",
          "app.kubernetes.io/component": "tensorlake-code",
          "app.kubernetes.io/part-of": "trellis",
        },
        ownerReferences: [
          { apiVersion: "trellis.dev/v1alpha1", kind: "Application", name: "my-app", uid: a.metadata.uid },
        ],
      },
    });
    // Not managed-by=trellis: the operator's ConfigMap informer must not cache code zips.
    expect(cm!.metadata.labels?.["app.kubernetes.io/managed-by"]).toBeUndefined();
  });

  it("updates: new code is a new ConfigMap, the old one goes; differing images go per function", async () => {
    const w = world();
    await deploy(w, zip("v1"), manifest());
    w.store.log.length = 0;
    const v2 = zip("v2");
    const r = await deploy(w, v2, manifest({}, { my_app: "example.org/app:2", helper: "example.org/gpu:2" }));
    expect(r.statusCode).toBe(200);
    const cmName = `my-app-code-${sha10(v2)}`;
    expect(w.store.log).toEqual([
      `apply ConfigMap/team/${cmName} owned`,
      "apply Application/team/my-app",
      `delete ConfigMap/team/my-app-code-${sha10(zip("v1"))}`,
    ]);
    expect(w.store.configMaps().map((c) => c.metadata.name)).toEqual([cmName]);
    const spec = w.store.app("my-app")!.spec;
    expect(spec.image).toBeUndefined();
    expect(spec.functions).toEqual([
      { name: "my_app", image: "example.org/app:2" },
      { name: "helper", image: "example.org/gpu:2" },
    ]);
    // The same code again keeps its ConfigMap (pods do not roll).
    w.store.log.length = 0;
    await deploy(w, v2, manifest());
    expect(w.store.log.filter((l) => l.startsWith("delete"))).toEqual([]);
    expect(w.store.app("my-app")!.spec.functions).toBeUndefined(); // no images named: the stock image
  });

  it("checks in RBAC what kubectl would need: applications create+patch, configmaps create+patch+delete", async () => {
    const { authorizer, checks } = recordingAuthorizer();
    const w = world(authorizer);
    expect((await deploy(w, zip("x"), manifest())).statusCode).toBe(200);
    expect(checks.sort()).toEqual(
      [
        "tok create applications team",
        "tok patch applications team",
        "tok create configmaps team",
        "tok patch configmaps team",
        "tok delete configmaps team",
      ].sort(),
    );
  });

  it("answers 403 naming the missing permission and writes nothing", async () => {
    const { authorizer } = recordingAuthorizer((c) => c.resource === "configmaps" && c.verb === "delete");
    const w = world(authorizer);
    const r = await deploy(w, zip("x"), manifest());
    expect(r.statusCode).toBe(403);
    expect(r.json()).toEqual({ code: "forbidden", message: "ada may not delete configmaps in namespace team" });
    expect(w.store.objects.size).toBe(0);
  });

  it("refuses code over the ConfigMap limit with 413", async () => {
    const w = world();
    const big = Buffer.concat([zip(""), Buffer.alloc(CODE_LIMIT_BYTES)]);
    const r = await deploy(w, big, manifest());
    expect(r.statusCode).toBe(413);
    expect(r.json()).toMatchObject({ code: "code_too_large" });
    expect(r.json().message).toMatch(new RegExp(`^code\\.zip is ${big.length} bytes; at most ${CODE_LIMIT_BYTES} `));
    expect(w.store.objects.size).toBe(0);
  });

  it("refuses other media types with 415", async () => {
    const w = world();
    const tar = await deploy(w, zip("x"), manifest(), { contentType: "application/x-tar" });
    expect(tar.statusCode).toBe(415);
    expect(tar.json()).toEqual({
      code: "unsupported_media_type",
      message: "code_content_type: application/x-tar is not supported; send application/zip",
    });
    const json = await app!.inject({ method: "POST", url: URL, payload: manifest() });
    expect(json.statusCode).toBe(415);
    expect(json.json().message).toMatch(/^body: send multipart\/form-data/);
    expect(w.store.objects.size).toBe(0);
  });

  it.each([
    [
      "a manifest without entrypoint.function_name",
      manifest({ entrypoint: {} }),
      /^application\.entrypoint\.function_name: /,
    ],
    [
      "an entrypoint that is no function",
      manifest({ entrypoint: { function_name: "other" } }),
      /^application\.entrypoint\.function_name: names no function of functions \(my_app, helper\)$/,
    ],
    ["a name that is no identifier", manifest({ name: "my app" }), /^application\.name: must be an Application name/],
    ["an empty image", manifest({}, { helper: "" }), /^application\.functions\.helper\.image: /],
    ["no functions", manifest({ functions: {} }), /^application\.functions: must name between 1 and 256 functions/],
  ])("refuses %s with 400 naming the field", async (_what, m, message) => {
    const w = world();
    const r = await deploy(w, zip("x"), m);
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe("invalid_input");
    expect(r.json().message).toMatch(message);
    expect(w.store.objects.size).toBe(0);
  });

  it("refuses a body that is not a zip, a manifest that is not JSON and upgrade_requests_to_latest_code=true", async () => {
    const w = world();
    const notZip = await deploy(w, Buffer.from("hello"), manifest());
    expect([notZip.statusCode, notZip.json().message]).toEqual([400, expect.stringMatching(/^part code: not a zip/)]);
    const notJson = await deploy(w, zip("x"), undefined, { manifestText: "{nope" });
    expect([notJson.statusCode, notJson.json().message]).toEqual([
      400,
      expect.stringMatching(/^application: not JSON/),
    ]);
    const upgrade = await deploy(w, zip("x"), manifest(), { upgrade: "true" });
    expect([upgrade.statusCode, upgrade.json().message]).toEqual([
      400,
      expect.stringMatching(/^upgrade_requests_to_latest_code: true is not supported/),
    ]);
    expect(w.store.objects.size).toBe(0);
  });

  it("refuses a Tensorlake name whose Application holds another Tensorlake application (409)", async () => {
    const w = world();
    await w.store.apply({
      apiVersion: "trellis.dev/v1alpha1",
      kind: "Application",
      metadata: { name: "my-app", namespace: "team", annotations: { "trellis.dev/tensorlake-name": "my-app" } },
    });
    const r = await deploy(w, zip("x"), manifest());
    expect(r.statusCode).toBe(409);
    expect(r.json().message).toMatch(
      /^application\.name: my_app maps to the Application my-app, which holds .* my-app/,
    );
  });

  it("passes the API server's validation errors on as 422", async () => {
    const w = world();
    w.store.apply = async () => {
      throw new KubeApiError(
        422,
        "Invalid",
        'Application "my-app" is invalid: spec.source: exactly one',
        "PATCH",
        "/x",
      );
    };
    const r = await deploy(w, zip("x"), manifest());
    expect(r.statusCode).toBe(422);
    expect(r.json()).toEqual({
      code: "invalid",
      message: 'kubernetes: Application "my-app" is invalid: spec.source: exactly one',
    });
  });
});

describe("DELETE /v1/namespaces/:ns/applications/:app", () => {
  it("deletes the Application by its Tensorlake name or object name; 404 when absent", async () => {
    const { authorizer, checks } = recordingAuthorizer();
    const w = world(authorizer);
    await deploy(w, zip("x"), manifest());
    checks.length = 0;
    const r = await app!.inject({ method: "DELETE", url: `${URL}/my_app`, headers: { authorization: "Bearer tok" } });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({});
    expect(w.store.app("my-app")).toBeUndefined();
    expect(checks).toEqual(["tok delete applications team"]);
    const again = await app!.inject({
      method: "DELETE",
      url: `${URL}/my-app`,
      headers: { authorization: "Bearer tok" },
    });
    expect(again.statusCode).toBe(404);
    expect(again.json()).toEqual({ code: "not_found", message: "application my-app not found in namespace team" });
    const bad = await app!.inject({ method: "DELETE", url: `${URL}/no%20way` });
    expect(bad.statusCode).toBe(400);
  });

  it("answers 403 without deleting when RBAC says no", async () => {
    const { authorizer } = recordingAuthorizer((c) => c.verb === "delete" && c.resource === "applications");
    const w = world(authorizer);
    await deploy(w, zip("x"), manifest());
    const r = await app!.inject({ method: "DELETE", url: `${URL}/my_app`, headers: { authorization: "Bearer tok" } });
    expect(r.statusCode).toBe(403);
    expect(w.store.app("my-app")).toBeDefined();
  });
});

describe("names and the Kubernetes edge", () => {
  it("maps Tensorlake names to Application names one-to-one", () => {
    expect(applicationObjectName("greet")).toBe("greet");
    expect(applicationObjectName("my-app")).toBe("my-app");
    expect(applicationObjectName("my_app")).toBe("my-app");
    expect(applicationObjectName("etl_v2_job")).toBe("etl-v2-job");
    const odd = ["My_App", "_private", "my__app", "app_", "x".repeat(70)].map(applicationObjectName);
    for (const n of odd) expect(n).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    expect(odd[0]).toMatch(/^my-app-[0-9a-f]{8}$/);
    expect(new Set([...odd, "my-app", "private"]).size).toBe(7); // no two names share an object
  });

  it("takes Tensorlake's Class.method application names (an @cls method) and maps them to a DNS label", () => {
    expect(applicationRef.safeParse("FunctionClass.run").success).toBe(true);
    expect(applicationRef.safeParse("a.b.c").success).toBe(false);
    expect(applicationRef.safeParse("../x").success).toBe(false);
    expect(applicationObjectName("FunctionClass.run")).toMatch(/^functionclass-run-[0-9a-f]{8}$/);
  });

  it("asks RBAC about configmaps in the core group", async () => {
    const bodies: { spec?: { resourceAttributes?: { group?: string; resource?: string } } }[] = [];
    const client = {
      request: async <T>(_m: string, path: string, o?: { body?: unknown }) => {
        if (path.includes("tokenreviews")) return { status: { authenticated: true, user: { username: "ada" } } } as T;
        bodies.push(o?.body as (typeof bodies)[number]);
        return { status: { allowed: false } } as T;
      },
    };
    const auth = new KubernetesAuthorizer(client);
    const d = await auth.authorize("t", { namespace: "team", verb: "patch", resource: "configmaps" });
    expect(d).toEqual({ allowed: false, status: 403, message: "ada may not patch configmaps in namespace team" });
    await auth.authorize("t", { namespace: "team", verb: "patch", resource: "applications" });
    expect(bodies.map((b) => b.spec?.resourceAttributes?.group)).toEqual(["", "trellis.dev"]);
  });

  it("server-side applies with its own field manager, forced, and lists code by label", async () => {
    const sent: { method: string; path: string; o?: { contentType?: string; query?: Record<string, unknown> } }[] = [];
    const client = {
      request: async <T>(
        method: string,
        path: string,
        o?: { contentType?: string; query?: Record<string, unknown> },
      ) => {
        sent.push({ method, path, o });
        if (method === "DELETE" && path.endsWith("/gone"))
          throw new KubeApiError(404, "NotFound", "gone", method, path);
        return { items: [] } as T;
      },
    };
    const s = kubeDeployStore(client as never);
    await s.apply({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "team" } });
    expect(sent[0]).toEqual({
      method: "PATCH",
      path: "/api/v1/namespaces/team/configmaps/c",
      o: expect.objectContaining({
        contentType: "application/apply-patch+yaml",
        query: { fieldManager: "trellis-http-deploy", force: true },
      }),
    });
    await s.listCodeConfigMaps("team", "my-app");
    expect(sent[1]!.o?.query).toEqual({
      labelSelector: "trellis.dev/application=my-app,app.kubernetes.io/component=tensorlake-code",
    });
    expect(await s.deleteApplication("team", "gone")).toBe(false);
    expect(await s.deleteApplication("team", "there")).toBe(true);
    expect(sent.at(-1)!.path).toBe("/apis/trellis.dev/v1alpha1/namespaces/team/applications/there");
  });
});
