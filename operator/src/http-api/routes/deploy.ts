// Tensorlake's deploy API, as its client (`tensorlake deploy`, deploy_applications) sends it:
//   POST   /v1/namespaces/:namespace/applications  multipart: code (code.zip), code_content_type,
//          application (the ApplicationManifest JSON), upgrade_requests_to_latest_code
//   DELETE /v1/namespaces/:namespace/applications/:application
// A deploy server-side-applies an immutable ConfigMap `<app>-code-<hash>` holding code.zip and
// the Application that mounts it. The caller needs in RBAC what kubectl would need for the same
// objects, so the operator never lets anyone do more than they could themselves.
import { createHash } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import {
  ANNOTATION,
  API_VERSION,
  type ApplicationSpec,
  LABEL,
  applicationObjectName,
  applicationRef,
  containerImage,
  labelValue,
  pythonIdentifier,
} from "../../../../protocol/index.js";
import { KubeApiError } from "../../kube/index.js";
import { CODE_COMPONENT, type CodeConfigMap, type DeployStore } from "../deploy-store.js";
import { DEFAULT_BODY_LIMIT, MultipartBody, checkDepth, readForm } from "../inputs.js";
import { errorBody, nsParams } from "../schemas.js";
import type { AccessCheck, ApplicationObj, HttpApiDeps } from "../types.js";
import { formatIssues } from "../zod-schemas.js";

/** Largest code.zip: a ConfigMap holds at most 1 MiB, and the apply request carries it base64. */
export const CODE_LIMIT_BYTES = 900 * 1024;
/** Largest manifest: it is kept in an annotation, and all annotations share 256 KiB. */
export const MANIFEST_LIMIT_BYTES = 128 * 1024;
/** Key of the zip in the ConfigMap, file name in the pod and `spec.module` (the worker imports it). */
export const CODE_KEY = "code.zip";

/** The fields of Tensorlake's ApplicationManifest the operator reads; the rest is kept as sent. */
export const tensorlakeManifest = z
  .looseObject({
    name: applicationRef,
    functions: z
      .record(
        pythonIdentifier,
        z.looseObject({
          image: containerImage
            .nullish()
            .meta({ description: "Container image of the function (the Application's image when all agree)." }),
        }),
      )
      .refine((f) => Object.keys(f).length >= 1 && Object.keys(f).length <= 256, {
        message: "must name between 1 and 256 functions",
      }),
    entrypoint: z.looseObject({ function_name: pythonIdentifier }),
  })
  .superRefine((m, ctx) => {
    if (!Object.hasOwn(m.functions, m.entrypoint.function_name))
      ctx.addIssue({
        code: "custom",
        path: ["entrypoint", "function_name"],
        message: `names no function of functions (${Object.keys(m.functions).join(", ")})`,
      });
  });
export type TensorlakeManifest = z.infer<typeof tensorlakeManifest>;

class DeployError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface DeployInput {
  code: Buffer;
  manifest: TensorlakeManifest;
  /** The manifest as sent, for the annotation the manifest route answers from verbatim. */
  manifestJson: string;
}

// Beyond `create applications` (checked before the handler): apply patches both objects, and a
// new deploy deletes the previous code ConfigMap.
const DEPLOY_CHECKS: Omit<AccessCheck, "namespace">[] = [
  { verb: "patch", resource: "applications" },
  { verb: "create", resource: "configmaps" },
  { verb: "patch", resource: "configmaps" },
  { verb: "delete", resource: "configmaps" },
];

const ZIP_SIGNATURES = [Buffer.from("PK\x03\x04", "latin1"), Buffer.from("PK\x05\x06", "latin1")];

async function readDeployForm(body: unknown, bodyLimit: number): Promise<DeployInput> {
  if (!(body instanceof MultipartBody))
    throw new DeployError(
      415,
      "unsupported_media_type",
      "body: send multipart/form-data with the parts code, code_content_type, application and upgrade_requests_to_latest_code",
    );
  // Small parts (a code zip and a manifest): read whole, under the body limit.
  const form = await readForm(body, bodyLimit);
  const names = [...form.keys()];
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined)
    throw new DeployError(400, "invalid_input", `part ${twice}: given twice; send each part once`);
  const codePart = form.get("code");
  if (codePart === null || typeof codePart === "string")
    throw new DeployError(400, "invalid_input", "part code: required, as a file part holding code.zip");
  const type = form.get("code_content_type");
  const mediaType = typeof type === "string" ? type.split(";")[0]!.trim().toLowerCase() : "application/zip";
  if (mediaType !== "application/zip")
    throw new DeployError(
      415,
      "unsupported_media_type",
      `code_content_type: ${mediaType || "(empty)"} is not supported; send application/zip`,
    );
  if (codePart.size > CODE_LIMIT_BYTES)
    throw new DeployError(
      413,
      "code_too_large",
      `code.zip is ${codePart.size} bytes; at most ${CODE_LIMIT_BYTES} fit in the ConfigMap that holds it: leave data files and dependencies out of the code directory (put them in the image)`,
    );
  const code = Buffer.from(await codePart.arrayBuffer());
  if (!ZIP_SIGNATURES.some((s) => code.subarray(0, 4).equals(s)))
    throw new DeployError(400, "invalid_input", "part code: not a zip archive (no zip signature PK\\x03\\x04)");
  checkUpgradeFlag(form.get("upgrade_requests_to_latest_code"));
  return { code, ...(await readManifest(form.get("application"))) };
}

/** Tensorlake's client refuses `true` itself; the flag is checked so that a hand-made call learns it too. */
function checkUpgradeFlag(v: FormDataEntryValue | null): void {
  if (v === null || v === "false") return;
  if (v === "true")
    throw new DeployError(
      400,
      "invalid_input",
      "upgrade_requests_to_latest_code: true is not supported (Tensorlake's client refuses it too); send false",
    );
  throw new DeployError(400, "invalid_input", "upgrade_requests_to_latest_code: must be true or false");
}

async function readManifest(part: FormDataEntryValue | null): Promise<Omit<DeployInput, "code">> {
  if (part === null) throw new DeployError(400, "invalid_input", "part application: required, the manifest JSON");
  const text = typeof part === "string" ? part : await part.text();
  if (Buffer.byteLength(text) > MANIFEST_LIMIT_BYTES)
    throw new DeployError(
      413,
      "manifest_too_large",
      `application: the manifest is ${Buffer.byteLength(text)} bytes; at most ${MANIFEST_LIMIT_BYTES}`,
    );
  let raw: unknown;
  try {
    checkDepth(text, "application");
  } catch (e) {
    throw new DeployError(400, "invalid_input", (e as Error).message);
  }
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DeployError(400, "invalid_input", `application: not JSON (${(e as Error).message})`);
  }
  const parsed = tensorlakeManifest.safeParse(raw);
  if (!parsed.success) throw new DeployError(400, "invalid_input", formatIssues("application", parsed.error));
  return { manifest: parsed.data, manifestJson: text };
}

/** The name of the code ConfigMap: the content hash in it, so new code is a new, immutable object. */
export function codeConfigMapName(app: string, code: Buffer): string {
  return `${app}-code-${createHash("sha256").update(code).digest("hex").slice(0, 10)}`;
}

export function codeConfigMap(namespace: string, app: string, code: Buffer, ownerUid?: string): CodeConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: codeConfigMapName(app, code),
      namespace,
      // Not managed-by=trellis: the operator's ConfigMap informer would hold every zip in memory.
      labels: { [LABEL.application]: labelValue(app), [LABEL.partOf]: "trellis", [LABEL.component]: CODE_COMPONENT },
      // Not the controller: the Application controller leaves it alone; GC removes it with the app.
      ...(ownerUid
        ? { ownerReferences: [{ apiVersion: API_VERSION, kind: "Application", name: app, uid: ownerUid }] }
        : {}),
    },
    immutable: true,
    binaryData: { [CODE_KEY]: code.toString("base64") },
  };
}

/** One image for every function → spec.image; otherwise each function that names one gets its own. */
export function manifestImages(m: TensorlakeManifest): Pick<ApplicationSpec, "image" | "functions"> {
  const byFn = Object.entries(m.functions).map(([name, f]) => ({ name, image: f.image ?? undefined }));
  const distinct = new Set(byFn.map((f) => f.image));
  if (distinct.size === 1) {
    const [image] = distinct;
    return image ? { image } : {};
  }
  return { functions: byFn.flatMap((f) => (f.image ? [{ name: f.name, image: f.image }] : [])) };
}

export function deployedApplication(
  namespace: string,
  name: string,
  input: DeployInput,
  codeCm: string,
): ApplicationObj {
  return {
    apiVersion: API_VERSION,
    kind: "Application",
    metadata: {
      name,
      namespace,
      annotations: {
        [ANNOTATION.tensorlakeName]: input.manifest.name,
        [ANNOTATION.tensorlakeManifest]: input.manifestJson,
      },
    },
    // Timeouts, retries, resources and container bounds stay with the decorators in the code,
    // which the runtime reports: the manifest says the same, derived from them.
    spec: {
      entrypoint: input.manifest.entrypoint.function_name,
      module: CODE_KEY,
      source: { configMapRef: { name: codeCm, key: CODE_KEY } },
      ...manifestImages(input.manifest),
    },
  };
}

async function applyDeploy(store: DeployStore, namespace: string, input: DeployInput, log: HttpApiDeps["log"]) {
  const name = applicationObjectName(input.manifest.name);
  const existing = await store.getApplication(namespace, name);
  const holder = existing?.metadata.annotations?.[ANNOTATION.tensorlakeName];
  if (holder && holder !== input.manifest.name)
    throw new DeployError(
      409,
      "conflict",
      `application.name: ${input.manifest.name} maps to the Application ${name}, which holds the Tensorlake application ${holder}; rename one of them`,
    );
  // The code first, so that no pod of the new generation waits for its volume.
  const uid = existing?.metadata.uid;
  const cm = codeConfigMap(namespace, name, input.code, uid);
  await store.apply(cm);
  const applied = await store.apply(deployedApplication(namespace, name, input, cm.metadata.name!));
  // A new Application: now its uid is known, the code joins it for garbage collection.
  if (applied.metadata.uid && applied.metadata.uid !== uid)
    await store.apply(codeConfigMap(namespace, name, input.code, applied.metadata.uid));
  await dropOldCode(store, namespace, name, cm.metadata.name!, log);
  return name;
}

/** The previous code is garbage once the Application names the new one (pods roll to it). */
async function dropOldCode(store: DeployStore, namespace: string, app: string, keep: string, log: HttpApiDeps["log"]) {
  try {
    for (const old of await store.listCodeConfigMaps(namespace, app))
      if (old.metadata.name && old.metadata.name !== keep) await store.deleteConfigMap(namespace, old.metadata.name);
  } catch (err) {
    // Not the caller's problem: garbage collection removes them with the Application.
    log.warn("could not delete old code ConfigMaps", { err, namespace, application: app });
  }
}

async function authorizeAll(deps: HttpApiDeps, req: FastifyRequest, namespace: string) {
  const header = req.headers.authorization;
  const token = header?.startsWith("Bearer ") ? header.slice(7).trim() || undefined : undefined;
  const decisions = await Promise.all(DEPLOY_CHECKS.map((c) => deps.authorizer.authorize(token, { namespace, ...c })));
  for (const d of decisions)
    if (!d.allowed) throw new DeployError(d.status, d.status === 401 ? "unauthorized" : "forbidden", d.message);
}

function sendError(reply: FastifyReply, e: unknown) {
  if (e instanceof DeployError) return reply.code(e.status).send({ code: e.code, message: e.message });
  // The API server's refusals a caller can act on (invalid spec, a conflicting writer).
  if (e instanceof KubeApiError && (e.statusCode === 409 || e.statusCode === 422))
    return reply
      .code(e.statusCode)
      .send({ code: e.statusCode === 409 ? "conflict" : "invalid", message: `kubernetes: ${e.message}` });
  throw e;
}

const noStore = (reply: FastifyReply) =>
  reply.code(503).send({ code: "unavailable", message: "deploying is not configured on this operator" });

const appRefParams = nsParams.extend({
  application: applicationRef.meta({
    description: "Application name, or its Tensorlake name (my_app finds the Application my-app).",
  }),
});
const empty = z.object({}).meta({ description: "Nothing: Tensorlake's client ignores the body." });

export function deployRoutes(deps: HttpApiDeps) {
  return async (app: FastifyInstance) => {
    app.post(
      "/v1/namespaces/:namespace/applications",
      {
        schema: {
          summary: "Create or update an application from Tensorlake's code.zip and manifest (multipart)",
          tags: ["applications"],
          params: nsParams,
          response: { 200: empty, 400: errorBody, 403: errorBody, 409: errorBody, 413: errorBody, 415: errorBody },
        },
        config: { access: { verb: "create", resource: "applications" } },
      },
      async (req, reply) => {
        const { namespace } = req.params as { namespace: string };
        if (!deps.deploy) return noStore(reply);
        try {
          await authorizeAll(deps, req, namespace);
          const input = await readDeployForm(req.body, deps.bodyLimit ?? DEFAULT_BODY_LIMIT);
          const name = await applyDeploy(deps.deploy, namespace, input, deps.log);
          deps.log.info("application deployed", { namespace, application: name, tensorlakeName: input.manifest.name });
          return {};
        } catch (e) {
          return sendError(reply, e);
        }
      },
    );
    app.delete(
      "/v1/namespaces/:namespace/applications/:application",
      {
        schema: {
          summary: "Delete an application (its pods and code go with it)",
          tags: ["applications"],
          params: appRefParams,
          response: { 200: empty, 404: errorBody },
        },
        config: { access: { verb: "delete", resource: "applications" } },
      },
      async (req, reply) => {
        const { namespace, application } = req.params as { namespace: string; application: string };
        if (!deps.deploy) return noStore(reply);
        const name = applicationObjectName(application);
        if (!(await deps.deploy.deleteApplication(namespace, name)))
          return reply
            .code(404)
            .send({ code: "not_found", message: `application ${application} not found in namespace ${namespace}` });
        return {};
      },
    );
  };
}
