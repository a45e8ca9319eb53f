// build FILE.py: one image per distinct Image of the file's functions, built with buildah, podman
// or docker (whichever works here), named by content hash, then pushed to --registry or imported
// into the local cluster's containerd. The Dockerfile text and the hash come from image-build.ts;
// this file is the I/O around them.
import { type SpawnOptions, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { CliError, type Ctx } from "./cluster.js";
import { describeFile, repoFile } from "./sdk.js";
import {
  type ContextFile,
  DEFAULT_BASE_IMAGE,
  type FunctionImage,
  type ImageSpec,
  checkRegistry,
  contentHash,
  contextSources,
  hostBuildArgs,
  hostPipCert,
  imageRef,
  parseBuildEnv,
  renderDockerfile,
  withHostArgs,
} from "./image-build.js";

export type BuilderName = "buildah" | "podman" | "docker";
const BUILDERS: BuilderName[] = ["buildah", "podman", "docker"];

export interface BuildOptions {
  /** Push to this repository prefix instead of importing into the local cluster. */
  registry?: string;
  /** --build-env KEY=VALUE values (validated here). */
  buildEnv?: string[];
  /** Force one builder (default: the first of buildah, podman, docker that works). */
  builder?: string;
  /** Base for Images that name none (default TRELLIS_BASE_IMAGE, else the local Trellis base). */
  baseImage?: string;
  /** Print the Dockerfiles and names, build nothing. */
  dryRun?: boolean;
  /** Only compute the names (what deploy --dry-run shows): build and print nothing. */
  namesOnly?: boolean;
  /** Build (and push) but do not import into the local cluster. */
  noLoad?: boolean;
  /** Mount this machine's apt source lists into RUN steps of Images on a base of their own. */
  hostAptSources?: boolean;
  /** The file's Images when the caller already imported it (deploy); else build imports it. */
  images?: FunctionImage[];
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

interface Planned {
  ref: string;
  image: ImageSpec;
  dockerfile: string;
  functions: string[];
}

const run = promisify(execFile);

/** The regular files (and symlinks, by target) under each source path of the context, hashed. */
function contextFiles(image: ImageSpec, context: string): ContextFile[] {
  const out: ContextFile[] = [];
  const visit = (rel: string) => {
    const abs = join(context, rel);
    const st = lstatSync(abs);
    if (st.isDirectory()) {
      for (const name of readdirSync(abs).sort()) visit(rel ? `${rel}/${name}` : name);
    } else {
      const data = st.isSymbolicLink() ? `symlink:${readlinkSync(abs)}` : readFileSync(abs);
      out.push({
        path: rel,
        executable: (st.mode & 0o111) !== 0,
        sha256: createHash("sha256").update(data).digest("hex"),
      });
    }
  };
  for (const src of contextSources(image)) {
    if (!existsSync(join(context, src)))
      throw new CliError(`Image ${image.name}:${image.tag}: ${src || "."}: no such file or directory in ${context}`);
    visit(src);
  }
  return out;
}

/** One entry per distinct image: functions whose Images render and hash alike share it. */
function plan(fns: FunctionImage[], context: string, opts: BuildOptions, buildEnv: Record<string, string>): Planned[] {
  const byRef = new Map<string, Planned>();
  const defaultBase = opts.baseImage ?? process.env.TRELLIS_BASE_IMAGE ?? DEFAULT_BASE_IMAGE;
  for (const { function: fn, image } of fns) {
    if (!image) continue;
    const dockerfile = renderDockerfile(image, { defaultBase, buildEnvKeys: Object.keys(buildEnv) });
    const hash = contentHash(dockerfile, contextFiles(image, context), buildEnv);
    const ref = imageRef(image, hash, opts.registry);
    const p = byRef.get(ref) ?? { ref, image, dockerfile, functions: [] };
    p.functions.push(fn);
    byRef.set(ref, p);
  }
  return [...byRef.values()];
}

async function works(cmd: string, args: string[]): Promise<boolean> {
  try {
    await run(cmd, args, { timeout: 20_000, env: builderEnv() });
    return true;
  } catch {
    return false;
  }
}

/** buildah: the storage driver and isolation scripts/images use, so both see the same images. */
function builderEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    STORAGE_DRIVER: process.env.STORAGE_DRIVER ?? process.env.TRELLIS_STORAGE_DRIVER ?? "overlay",
    BUILDAH_ISOLATION: process.env.BUILDAH_ISOLATION ?? "chroot",
  };
}

/** The builder to use: --builder, else the first of buildah, podman, docker that answers here. */
export async function detectBuilder(wanted?: string): Promise<BuilderName> {
  if (wanted !== undefined && !BUILDERS.includes(wanted as BuilderName))
    throw new CliError(`--builder ${JSON.stringify(wanted)}: expected one of ${BUILDERS.join(", ")}`);
  const probe: Record<BuilderName, string[]> = {
    buildah: ["version"],
    podman: ["version"],
    docker: ["info", "--format", "{{.ServerVersion}}"], // the client alone cannot build
  };
  for (const b of wanted ? [wanted as BuilderName] : BUILDERS) if (await works(b, probe[b])) return b;
  throw new CliError(
    wanted
      ? `--builder ${wanted}: it does not run here (${wanted === "docker" ? "is the docker daemon up?" : "is it installed?"})`
      : "no image builder works here: install buildah or podman, or start a docker daemon",
  );
}

/** Runs a builder command with its output on stderr; a failure names the command. */
function spawnBuilder(cmd: string, args: string[], what: string): Promise<void> {
  const options: SpawnOptions = { env: builderEnv(), stdio: ["ignore", process.stderr, process.stderr] };
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, options);
    child.on("error", (e) => rej(new CliError(`${what}: ${cmd}: ${e.message}`)));
    child.on("exit", (code, signal) =>
      code === 0
        ? res()
        : rej(new CliError(`${what}: ${cmd} ${args[0]} failed (${signal ?? `exit ${code}`}, output above)`)),
    );
  });
}

async function imageExists(b: BuilderName, ref: string): Promise<boolean> {
  if (b === "buildah") return works("buildah", ["inspect", "--type", "image", ref]);
  if (b === "podman") return works("podman", ["image", "exists", ref]);
  return works("docker", ["image", "inspect", ref]);
}

/** Where RUN steps find the machine's CA bundle (buildah and podman mount it for the build only). */
const CERT_IN_BUILD = "/run/trellis-build/ca.pem";

/** Build-only mounts of this machine's settings (buildah and podman; docker build has no --volume). */
interface HostMounts {
  /** pip's CA bundle here (a TLS-inspecting proxy's CA must be trusted inside RUN steps too). */
  cert?: string;
  /** Mount apt's source lists into RUN steps of Images with a base of their own. */
  aptSources?: boolean;
}

const APT_SOURCES = ["/etc/apt/sources.list", "/etc/apt/sources.list.d"];

function mountArgs(b: BuilderName, p: Planned, host: HostMounts): { volumes: string[]; args: Record<string, string> } {
  if (b === "docker") return { volumes: [], args: {} };
  const volumes: string[] = [];
  const args: Record<string, string> = {};
  if (host.cert && existsSync(host.cert)) {
    volumes.push(`${host.cert}:${CERT_IN_BUILD}:ro`);
    args.PIP_CERT = CERT_IN_BUILD;
  }
  // The default base already carries this machine's apt sources (scripts/images/base.sh).
  if (host.aptSources && p.image.base_image !== null)
    for (const f of APT_SOURCES) if (existsSync(f)) volumes.push(`${f}:${f}:ro`);
  return { volumes, args };
}

async function buildOne(
  b: BuilderName,
  p: Planned,
  context: string,
  args: Record<string, string>,
  host: HostMounts,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "trellis-build-"));
  try {
    const mounts = mountArgs(b, p, host);
    const all = { ...args, ...mounts.args };
    const path = join(dir, "Dockerfile");
    writeFileSync(path, withHostArgs(p.dockerfile, Object.keys(all)));
    const buildArgs = [
      ...Object.entries(all).flatMap(([k, v]) => ["--build-arg", `${k}=${v}`]),
      ...mounts.volumes.flatMap((v) => ["--volume", v]),
    ];
    // The build sees exactly the files the hash covers: a copy of the sources the steps name.
    const ctx = join(dir, "context");
    mkdirSync(ctx);
    for (const src of contextSources(p.image))
      cpSync(join(context, src), join(ctx, src), {
        recursive: true,
        verbatimSymlinks: true,
        filter: (from) => from !== dir && !from.startsWith(`${dir}/`),
      });
    const common = ["-f", path, "-t", p.ref, ...buildArgs];
    const argv =
      b === "buildah"
        ? ["bud", "--layers", "--isolation", builderEnv().BUILDAH_ISOLATION!, ...common, ctx]
        : ["build", ...common, ctx];
    await spawnBuilder(b, argv, `building ${p.ref}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function push(b: BuilderName, ref: string): Promise<void> {
  await spawnBuilder(b, b === "buildah" ? ["push", ref, `docker://${ref}`] : ["push", ref], `pushing ${ref}`);
}

/** Where the archive of a built image waits for the import (kept: a cache hit imports without export). */
function archivePath(ref: string): string {
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache");
  return join(cache, "trellis/images/functions", `${ref.replace(/[/:@]/g, "_")}.oci.tar`);
}

async function exportArchive(b: BuilderName, ref: string, archive: string): Promise<void> {
  mkdirSync(dirname(archive), { recursive: true });
  const partial = `${archive}.partial`;
  rmSync(partial, { force: true });
  // oci-archive keeps the name in the index annotation, which `ctr images import` uses as the ref.
  const argv =
    b === "buildah"
      ? ["push", "--quiet", ref, `oci-archive:${partial}:${ref}`]
      : b === "podman"
        ? ["save", "--format", "oci-archive", "-o", partial, ref]
        : ["save", "-o", partial, ref];
  await spawnBuilder(b, argv, `exporting ${ref}`);
  renameSync(partial, archive);
  // One archive per image repository (its newest build): older ones only take disk space.
  const dir = dirname(archive);
  const stem = basename(archivePath(ref.slice(0, ref.lastIndexOf(":")))).replace(/\.oci\.tar$/, "_");
  for (const name of readdirSync(dir))
    if (
      name.startsWith(stem) &&
      /^[0-9a-f]{16}\.oci\.tar$/.test(name.slice(stem.length)) &&
      join(dir, name) !== archive
    )
      rmSync(join(dir, name), { force: true });
}

/** Into every node's containerd of the local cluster, through scripts/images/load.sh. */
async function loadLocal(b: BuilderName, ref: string, fresh: boolean): Promise<void> {
  const load = repoFile("scripts/images/load.sh");
  if (!load)
    throw new CliError(`cannot find scripts/images/load.sh to import ${ref} into the local cluster: use --registry`);
  const archive = archivePath(ref);
  if (fresh || !existsSync(archive)) await exportArchive(b, ref, archive);
  await new Promise<void>((res, rej) => {
    const child = spawn("bash", [load, archive], {
      env: { ...process.env, TRELLIS_IMAGE: ref },
      stdio: ["ignore", process.stderr, process.stderr],
    });
    child.on("error", (e) => rej(new CliError(`importing ${ref}: ${e.message}`)));
    child.on("exit", (code) =>
      code === 0 ? res() : rej(new CliError(`importing ${ref} into the local cluster failed (output above)`)),
    );
  });
}

/**
 * Builds the images of FILE's functions; returns function name → image reference for every function
 * whose decorator names an Image (the others run the stock runtime image). Deploy sets these as
 * spec.functions[].image.
 */
export async function buildImages(
  _ctx: Ctx | undefined,
  file: string,
  opts: BuildOptions = {},
): Promise<Map<string, string>> {
  const path = resolve(file);
  if (!existsSync(path)) throw new CliError(`${file}: no such file`);
  checkRegistry(opts.registry);
  const buildEnv = parseBuildEnv(opts.buildEnv);
  const images = opts.images ?? (await describeFile(file, path)).images;
  const planned = plan(images, dirname(path), opts, buildEnv);
  const refs = new Map(planned.flatMap((p) => p.functions.map((f) => [f, p.ref] as [string, string])));
  if (opts.namesOnly) return refs;
  if (opts.dryRun) {
    for (const p of planned) process.stdout.write(`# ${p.ref} for ${p.functions.join(", ")}\n${p.dockerfile}\n`);
    return refs;
  }
  if (!planned.length) return refs;
  const b = await detectBuilder(opts.builder);
  let pipConfig = "";
  try {
    pipConfig = (await run("python3", ["-m", "pip", "config", "list"], { timeout: 30_000 })).stdout;
  } catch {
    // no pip on this machine: the environment alone
  }
  const args = { ...hostBuildArgs(pipConfig, process.env), ...buildEnv };
  for (const p of planned) {
    const t0 = Date.now();
    const cached = await imageExists(b, p.ref);
    const host = { cert: hostPipCert(pipConfig, process.env), aptSources: opts.hostAptSources };
    if (!cached) await buildOne(b, p, dirname(path), args, host);
    if (opts.registry) await push(b, p.ref);
    else if (!opts.noLoad) await loadLocal(b, p.ref, !cached);
    const how = cached ? "up to date" : `built with ${b} in ${((Date.now() - t0) / 1000).toFixed(1)} s`;
    (opts.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(
      `image ${p.ref} for ${p.functions.join(", ")}: ${how}`,
    );
  }
  return refs;
}

/** `kubectl trellis build FILE.py`: prints one "FUNCTION IMAGE" line per function with an Image. */
export async function build(file: string, opts: BuildOptions): Promise<number> {
  const refs = await buildImages(undefined, file, opts);
  if (!refs.size) process.stderr.write(`${file}: no function names an Image; nothing to build\n`);
  if (!opts.dryRun) for (const [fn, ref] of refs) process.stdout.write(`${fn} ${ref}\n`);
  return 0;
}
