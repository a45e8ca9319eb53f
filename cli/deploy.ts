// deploy FILE.py: imports the file with the SDK (python3, PYTHONPATH = the SDK), reads the
// decorators, and applies an Application per @application() (server-side apply): one carries its
// code inline; the applications of a file with several share one code ConfigMap.
import { existsSync, readFileSync } from "node:fs";
import { basename, resolve } from "node:path";
import { API_VERSION, LABEL, dnsStem, labelValue, shortHash } from "../protocol/index.js";
import { CliError, type Ctx, appPath, kube, requireCrds } from "./cluster.js";
import { KubeApiError } from "./kube.js";
import type { FunctionImage } from "./image-build.js";
import { type OutputFormat, formatDocument } from "./output.js";
import { type Described, describeFile } from "./sdk.js";

const INLINE_MAX = 262144;

/**
 * The applications to deploy: every @application() in the file (as Tensorlake deploys them), or
 * the one --entrypoint names. --name renames, so it needs exactly one.
 */
export function chooseApplications(
  file: string,
  described: Described[],
  opts: { entrypoint?: string; name?: string },
): { entrypoint: string; name: string }[] {
  const apps = described.filter((f) => f.application).map((f) => f.name);
  if (opts.entrypoint && !apps.includes(opts.entrypoint))
    throw new CliError(
      `--entrypoint ${opts.entrypoint}: not an @application() in ${file} (found: ${apps.join(", ") || "none"})`,
    );
  const chosen = opts.entrypoint ? [opts.entrypoint] : apps;
  if (chosen.length === 0) throw new CliError(`${file} defines no @application() function`);
  if (opts.name !== undefined && chosen.length > 1)
    throw new CliError(
      `--name: ${file} defines several applications (${apps.join(", ")}); --name needs one, choose it with --entrypoint`,
    );
  const out = chosen.map((entrypoint) => ({ entrypoint, name: opts.name ?? dnsStem(entrypoint) }));
  const seen = new Map<string, string>();
  for (const a of out) {
    const other = seen.get(a.name);
    if (other)
      throw new CliError(
        `applications ${other} and ${a.entrypoint} would both be named ${a.name}: deploy them one at a time with --entrypoint and --name`,
      );
    seen.set(a.name, a.entrypoint);
  }
  return out;
}

export interface DeployOptions {
  name?: string;
  image?: string;
  entrypoint?: string;
  dryRun?: boolean;
  output?: OutputFormat;
  /**
   * Builds the Images the functions name (kubectl trellis build) and gives function name → image;
   * called with the Images from the same import of the file that describes it.
   */
  build?: (images: FunctionImage[]) => Promise<Map<string, string>>;
}

const MANAGER = "kubectl-trellis";
const CODE_KEY = "app.py";
/** A ConfigMap holds at most 1 MiB; leave room for its metadata. */
const SHARED_MAX = 1000 * 1024;
const LABEL_CODE_FILE = "trellis.dev/code-file";

/**
 * The one code object the applications of a file share when there are several: an immutable
 * ConfigMap named by the file and the hash of its content (a change makes a new one), owned by
 * each of them so that it goes with the last.
 */
export function sharedCode(namespace: string, file: string, source: string) {
  const stem = dnsStem(basename(file).replace(/\.py$/, "")).slice(0, 200) || "code";
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: `${stem}-code-${shortHash(source, 10)}`,
      namespace,
      labels: { [LABEL.managedBy]: MANAGER, [LABEL_CODE_FILE]: labelValue(stem) },
    },
    immutable: true,
    data: { [CODE_KEY]: source },
  };
}

type AppManifest = ReturnType<typeof manifestsFor>[number];

function manifestsFor(
  ctx: Ctx,
  chosen: { entrypoint: string; name: string }[],
  source: { inline: string } | { configMapRef: { name: string; key: string } },
  opts: DeployOptions & { functionImages?: Map<string, string> },
) {
  const images = [...(opts.functionImages ?? new Map<string, string>())].sort(([a], [b]) => a.localeCompare(b));
  return chosen.map(({ entrypoint, name }) => ({
    apiVersion: API_VERSION,
    kind: "Application",
    metadata: { name, namespace: ctx.namespace, labels: { [LABEL.managedBy]: MANAGER } },
    spec: {
      entrypoint,
      ...("configMapRef" in source ? { module: CODE_KEY } : {}),
      ...(opts.image ? { image: opts.image } : {}),
      source,
      ...(images.length ? { functions: images.map(([fn, image]) => ({ name: fn, image })) } : {}),
    },
  }));
}

async function apply<T>(ctx: Ctx, path: string, body: unknown, what: string): Promise<T> {
  try {
    return await kube<T>(ctx, "PATCH", path, {
      body,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: MANAGER, force: "true" },
    });
  } catch (e) {
    if (e instanceof KubeApiError) throw new CliError(`applying ${what}: ${e.message}`);
    throw e;
  }
}

const cmPath = (ns: string, name = "") => `/api/v1/namespaces/${ns}/configmaps${name ? `/${name}` : ""}`;

/** Earlier code objects of this file that no Application refers to any more. */
async function pruneSharedCode(ctx: Ctx, code: ReturnType<typeof sharedCode>): Promise<string[]> {
  const label = code.metadata.labels[LABEL_CODE_FILE];
  const cms = await kube<{ items: { metadata: { name: string } }[] }>(ctx, "GET", cmPath(ctx.namespace), {
    query: { labelSelector: `${LABEL.managedBy}=${MANAGER},${LABEL_CODE_FILE}=${label}` },
  });
  const apps = await kube<{ items: AppManifest[] }>(ctx, "GET", appPath(ctx.namespace));
  const used = new Set(
    apps.items.flatMap((a) => {
      const ref = (a.spec.source as { configMapRef?: { name: string } } | undefined)?.configMapRef;
      return ref ? [ref.name] : [];
    }),
  );
  const gone: string[] = [];
  for (const cm of cms.items) {
    const name = cm.metadata.name;
    if (name === code.metadata.name || used.has(name)) continue;
    await kube(ctx, "DELETE", cmPath(ctx.namespace, name)).catch((e: unknown) => {
      if (!(e instanceof KubeApiError && e.statusCode === 404)) throw e;
    });
    gone.push(name);
  }
  return gone;
}

export async function deploy(ctx: Ctx, file: string, opts: DeployOptions): Promise<number> {
  const path = resolve(file);
  if (!existsSync(path)) throw new CliError(`${file}: no such file`);
  const source = readFileSync(path, "utf8");
  const size = Buffer.byteLength(source);
  if (size > SHARED_MAX)
    throw new CliError(`${file}: ${size} bytes; code shipped without an image is limited to ${SHARED_MAX} bytes`);
  const { functions: described, images } = await describeFile(file, path);
  const chosen = chooseApplications(file, described, opts);
  const functionImages = opts.build ? await opts.build(images) : undefined;
  // One application carries its code inline; several share one code object.
  const code = chosen.length > 1 || size > INLINE_MAX ? sharedCode(ctx.namespace, path, source) : undefined;
  const manifests = manifestsFor(
    ctx,
    chosen,
    code ? { configMapRef: { name: code.metadata.name, key: CODE_KEY } } : { inline: source },
    { ...opts, functionImages },
  );
  if (opts.dryRun) {
    const docs = [...(code ? [code] : []), ...manifests];
    const doc = docs.length === 1 ? docs[0] : { apiVersion: "v1", kind: "List", items: docs };
    process.stdout.write(formatDocument(doc, opts.output ?? "json"));
    return 0;
  }
  await requireCrds(ctx);
  const fns = described.map((f) => f.name).join(", ");
  // The code first, so that no pod waits for its volume.
  if (code) await apply(ctx, cmPath(ctx.namespace, code.metadata.name), code, `ConfigMap ${code.metadata.name}`);
  const owners: { apiVersion: string; kind: string; name: string; uid: string }[] = [];
  for (const app of manifests) {
    const name = app.metadata.name;
    const applied = await apply<{ metadata: { uid: string } }>(
      ctx,
      appPath(ctx.namespace, name),
      app,
      `Application ${name}`,
    );
    owners.push({ apiVersion: API_VERSION, kind: "Application", name, uid: applied.metadata.uid });
    process.stdout.write(
      `application.trellis.dev/${name} applied in namespace ${ctx.namespace} (entrypoint ${app.spec.entrypoint}; functions ${fns}; from ${basename(path)})\n`,
    );
  }
  if (code) {
    // The whole object again: what this manager leaves out of an apply it would give up.
    const { metadata } = code;
    const owned = { ...code, metadata: { ...metadata, ownerReferences: owners } };
    await apply(ctx, cmPath(ctx.namespace, metadata.name), owned, `ConfigMap ${metadata.name}`);
    const pruned = await pruneSharedCode(ctx, code);
    process.stdout.write(
      `configmap/${metadata.name} holds the code of ${owners.map((o) => o.name).join(", ")}${pruned.length ? ` (replaces ${pruned.join(", ")})` : ""}\n`,
    );
  }
  return 0;
}
