// deploy FILE.py: imports the file with the SDK (python3, PYTHONPATH = the SDK), reads the
// decorators, and applies an Application with the code inline (server-side apply).
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { API_VERSION, dnsStem } from "../protocol/index.js";
import { CliError, type Ctx, appPath, kube, requireCrds } from "./cluster.js";
import { KubeApiError } from "./kube.js";

const INLINE_MAX = 262144;

/** The SDK next to this file in the repository (bundle: dist/cli/, source: cli/), or TRELLIS_SDK_PATH. */
function sdkPath(): string {
  if (process.env.TRELLIS_SDK_PATH) return process.env.TRELLIS_SDK_PATH;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) {
    const p = join(dir, "runtime-image/python");
    if (existsSync(join(p, "trellis"))) return p;
  }
  throw new CliError(
    "cannot find the Trellis Python SDK: set TRELLIS_SDK_PATH to the directory holding the trellis package",
  );
}

interface Described {
  name: string;
  application: boolean;
}

const DESCRIBE = `
import json, sys
from trellis.worker.loader import load, describe
fns = load(sys.argv[1])
print(json.dumps([describe(f) for f in fns.values()]))
`;

/** The functions the file defines, as the SDK describes them (the file is imported with python3). */
async function describeFile(file: string, path: string): Promise<Described[]> {
  try {
    const { stdout } = await promisify(execFile)("python3", ["-c", DESCRIBE, path], {
      env: { ...process.env, PYTHONPATH: [sdkPath(), process.env.PYTHONPATH].filter(Boolean).join(":") },
      maxBuffer: 16 * 1024 * 1024,
    });
    return JSON.parse(stdout) as Described[];
  } catch (e) {
    if (e instanceof CliError) throw e;
    const err = e as { stderr?: string; message: string };
    const last = (err.stderr ?? err.message).trim().split("\n").slice(-3).join("\n");
    throw new CliError(`importing ${file} with the Trellis SDK failed:\n${last}`);
  }
}

/** --entrypoint if it is an @application(), else the file's only one. */
function chooseEntrypoint(file: string, described: Described[], wanted: string | undefined): string {
  const apps = described.filter((f) => f.application).map((f) => f.name);
  if (wanted && !apps.includes(wanted))
    throw new CliError(
      `--entrypoint ${wanted}: not an @application() in ${file} (found: ${apps.join(", ") || "none"})`,
    );
  if (wanted) return wanted;
  if (apps.length !== 1)
    throw new CliError(
      apps.length
        ? `${file} defines several applications (${apps.join(", ")}): choose one with --entrypoint`
        : `${file} defines no @application() function`,
    );
  return apps[0]!;
}

export async function deploy(
  ctx: Ctx,
  file: string,
  opts: { name?: string; image?: string; entrypoint?: string; dryRun?: boolean },
): Promise<number> {
  const path = resolve(file);
  if (!existsSync(path)) throw new CliError(`${file}: no such file`);
  const source = readFileSync(path, "utf8");
  if (Buffer.byteLength(source) > INLINE_MAX)
    throw new CliError(`${file}: ${Buffer.byteLength(source)} bytes; inline code is limited to ${INLINE_MAX} bytes`);
  const described = await describeFile(file, path);
  const entrypoint = chooseEntrypoint(file, described, opts.entrypoint);
  const name = opts.name ?? dnsStem(entrypoint);
  const app = {
    apiVersion: API_VERSION,
    kind: "Application",
    metadata: { name, namespace: ctx.namespace, labels: { "app.kubernetes.io/managed-by": "kubectl-trellis" } },
    spec: {
      entrypoint,
      ...(opts.image ? { image: opts.image } : {}),
      source: { inline: source },
    },
  };
  if (opts.dryRun) {
    process.stdout.write(`${JSON.stringify(app, null, 2)}\n`);
    return 0;
  }
  await requireCrds(ctx);
  try {
    await kube(ctx, "PATCH", appPath(ctx.namespace, name), {
      body: app,
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: "kubectl-trellis", force: "true" },
    });
  } catch (e) {
    if (e instanceof KubeApiError) throw new CliError(`applying Application ${name}: ${e.message}`);
    throw e;
  }
  const fns = described.map((f) => f.name).join(", ");
  process.stdout.write(
    `application.trellis.dev/${name} applied in namespace ${ctx.namespace} (entrypoint ${entrypoint}; functions ${fns}; from ${basename(path)})\n`,
  );
  return 0;
}
