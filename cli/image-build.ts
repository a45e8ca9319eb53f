// Pure part of `kubectl trellis build`: an Image definition (as trellis.worker.images describes it)
// becomes Dockerfile text, and the Dockerfile plus the context files it adds become a content
// hash that names the image. No I/O here: cli/build.ts reads files and runs the builder.
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { CliError } from "./cluster.js";

export type StepOp = "RUN" | "ENV" | "COPY" | "ADD" | "WORKDIR";
export interface ImageStep {
  op: StepOp;
  args: string[];
}
/** base_image null: the Image keeps the SDK's default (a public image), the local base is used. */
export interface ImageSpec {
  name: string;
  tag: string;
  base_image: string | null;
  steps: ImageStep[];
}
export interface FunctionImage {
  function: string;
  image: ImageSpec | null;
}

const OPS: readonly string[] = ["RUN", "ENV", "COPY", "ADD", "WORKDIR"];
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isText = (v: unknown): v is string => typeof v === "string" && v !== "";

/**
 * The SDK's description (trellis.worker.images.function_images), checked: it comes from importing user code,
 * so a malformed one is refused with the function and field it concerns rather than crashing later.
 */
export function parseFunctionImages(data: unknown): FunctionImage[] {
  const bad = (where: string, rule: string): never => {
    throw new CliError(`the SDK's description of the file's Images: ${where} ${rule}`);
  };
  if (!isObject(data) || !Array.isArray(data.functions)) return bad("functions", "must be a list");
  return data.functions.map((f: unknown, i) => {
    if (!isObject(f) || !isText(f.function)) return bad(`functions[${i}].function`, "must be a non-empty string");
    const at = `function ${f.function}:`;
    const image = f.image;
    if (image === null || image === undefined) return { function: f.function, image: null };
    if (!isObject(image)) return bad(`${at} image`, "must be an object or null");
    if (!isText(image.name) || !isText(image.tag)) bad(`${at} image name and tag`, "must be non-empty strings");
    if (image.base_image !== null && !isText(image.base_image))
      bad(`${at} image base_image`, "must be a non-empty string or null");
    if (!Array.isArray(image.steps)) return bad(`${at} image steps`, "must be a list");
    const steps = image.steps.map((s: unknown, j) => {
      if (!isObject(s) || !OPS.includes(s.op as string))
        return bad(`${at} steps[${j}].op`, `must be one of ${OPS.join(", ")}`);
      if (!Array.isArray(s.args) || !s.args.every((a) => typeof a === "string"))
        return bad(`${at} steps[${j}].args`, "must be a list of strings");
      return { op: s.op as StepOp, args: s.args as string[] };
    });
    return {
      function: f.function,
      image: {
        name: image.name as string,
        tag: image.tag as string,
        base_image: image.base_image as string | null,
        steps,
      },
    };
  });
}

/** Default base: the local Trellis runtime image's base (scripts/images/lib.sh, TRELLIS_BASE_IMAGE). */
export const DEFAULT_BASE_IMAGE = "localhost/trellis-base:bookworm-py311-node20";

/**
 * Build arguments taken from this machine (pip's network settings, proxies): where packages come
 * from, never which. Declared only in the Dockerfile handed to the builder (withHostArgs), so they
 * are not part of the content hash and a build elsewhere gets the same name.
 */
export const HOST_BUILD_ARGS = [
  "PIP_INDEX_URL",
  "PIP_EXTRA_INDEX_URL",
  "PIP_TRUSTED_HOST",
  "PIP_FIND_LINKS",
  "PIP_DEFAULT_TIMEOUT",
  "PIP_TIMEOUT",
  "PIP_RETRIES",
  "PIP_PROXY",
  "PIP_DISABLE_PIP_VERSION_CHECK",
  "PIP_CERT", // set only when the builder mounts the machine's CA bundle (see hostPipCert)
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
  "http_proxy",
  "https_proxy",
  "no_proxy",
] as const;

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const IMAGE_REF = /^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/;
const URL_SRC = /^https?:\/\//;

function fail(image: ImageSpec, what: string): never {
  throw new CliError(`Image ${image.name}:${image.tag}: ${what}`);
}

function oneLine(image: ImageSpec, where: string, value: string): string {
  if (typeof value !== "string" || value === "" || /[\r\n]/.test(value))
    fail(image, `${where} must be a non-empty single line, got ${JSON.stringify(value)}`);
  return value;
}

/** A COPY/ADD source: a path relative to the build context that stays inside it (ADD may name a URL). */
export function contextSource(image: ImageSpec, op: StepOp, src: string): string | null {
  oneLine(image, `${op} source`, src);
  if (URL_SRC.test(src)) {
    if (op === "ADD") return null;
    fail(image, `COPY ${src}: the source must be a path inside the build context (ADD fetches URLs)`);
  }
  if (/[*?[\]]/.test(src)) fail(image, `${op} ${src}: wildcards are not supported, name files or directories`);
  const norm = posix.normalize(src);
  if (posix.isAbsolute(norm) || norm === ".." || norm.startsWith("../"))
    fail(image, `${op} ${src}: the source must be a path inside the build context (the file's directory)`);
  return norm === "." ? "" : norm.replace(/\/+$/, "");
}

/** Dockerfile double-quoted string: backslash, quote and $ escaped (no variable expansion). */
const quoted = (s: string) => `"${s.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;

function renderStep(image: ImageSpec, step: ImageStep): string[] {
  const { op, args } = step;
  switch (op) {
    case "RUN":
      // Exec form through sh -c: any command text (newlines, quotes) stays one instruction.
      return args.map((c) => {
        if (typeof c !== "string" || !c.trim()) fail(image, "RUN commands must be non-empty");
        return `RUN ${JSON.stringify(["/bin/sh", "-c", c])}`;
      });
    case "ENV": {
      const [key = "", value = ""] = args;
      if (!ENV_KEY.test(key)) fail(image, `ENV key ${JSON.stringify(key)} must match ${ENV_KEY.source}`);
      if (/[\r\n]/.test(value)) fail(image, `ENV ${key}: the value must be a single line`);
      return [`ENV ${key}=${quoted(value)}`];
    }
    case "COPY":
    case "ADD": {
      const [src = "", dest = ""] = args;
      const local = contextSource(image, op, src);
      return [
        `${op} ${JSON.stringify([local === null ? src : local || ".", oneLine(image, `${op} destination`, dest)])}`,
      ];
    }
    case "WORKDIR":
      return [`WORKDIR ${oneLine(image, "WORKDIR", args[0] ?? "").replace(/\$/g, "\\$")}`];
    default:
      return fail(image, `unknown build step ${JSON.stringify(op)}`);
  }
}

/**
 * Pip for the default base, which has python3 but no pip: the Debian package (from the base's own
 * apt sources, which are the build machine's), and pip allowed to install into the system
 * interpreter as in Tensorlake's default python image, so `.run("pip install ...")` works as-is.
 */
const DEFAULT_BASE_PRELUDE = [
  `RUN ${JSON.stringify([
    "/bin/sh",
    "-c",
    "set -e; if ! python3 -m pip --version >/dev/null 2>&1; then export DEBIAN_FRONTEND=noninteractive; " +
      "apt-get update -q; apt-get install -q -y --no-install-recommends python3-pip; " +
      "rm -rf /var/lib/apt/lists/* /var/cache/apt/*; fi",
  ])}`,
  "ENV PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_CACHE_DIR=1",
];

/** Last layer: what the worker container needs (python3 >= 3.10; the sidecar copies the SDK in). */
const RUNTIME_CHECK = `RUN ${JSON.stringify([
  "python3",
  "-c",
  "import sys; sys.exit(0 if sys.version_info >= (3, 10) else 'the Trellis worker needs python3 >= 3.10, the image has ' + sys.version)",
])}`;

export interface RenderOptions {
  /** Base when the Image names none (DEFAULT_BASE_IMAGE unless overridden). */
  defaultBase: string;
  /** Keys of --build-env: declared as ARG so that RUN steps see them. */
  buildEnvKeys: string[];
}

/**
 * The Dockerfile for one Image: FROM, --build-env args, (pip on the default base), the steps, the
 * runtime check. It is what the content hash covers; withHostArgs adds this machine's build args.
 */
export function renderDockerfile(image: ImageSpec, opts: RenderOptions): string {
  const base = image.base_image ?? opts.defaultBase;
  if (!IMAGE_REF.test(base)) fail(image, `base image ${JSON.stringify(base)} is not an image reference`);
  const args = [...new Set(opts.buildEnvKeys)].sort();
  const lines = [
    `# kubectl trellis build: Image ${JSON.stringify(`${image.name}:${image.tag}`)}`,
    `FROM ${base}`,
    ...args.map((a) => `ARG ${a}`),
    ...(image.base_image === null ? DEFAULT_BASE_PRELUDE : []),
    ...image.steps.flatMap((s) => renderStep(image, s)),
    RUNTIME_CHECK,
    `LABEL org.trellis.image.name=${quoted(image.name)} org.trellis.image.tag=${quoted(image.tag)}`,
  ];
  return `${lines.join("\n")}\n`;
}

/** The Dockerfile with ARG lines for the machine's build args (after FROM, so RUN steps see them). */
export function withHostArgs(dockerfile: string, keys: string[]): string {
  const lines = dockerfile.split("\n");
  const from = lines.findIndex((l) => l.startsWith("FROM "));
  const declared = new Set(lines.filter((l) => l.startsWith("ARG ")).map((l) => l.slice(4)));
  const add = [...new Set(keys)].filter((k) => ENV_KEY.test(k) && !declared.has(k)).map((k) => `ARG ${k}`);
  lines.splice(from + 1, 0, ...add);
  return lines.join("\n");
}

/** The context paths an Image's COPY/ADD steps read (URLs excluded), in step order. */
export function contextSources(image: ImageSpec): string[] {
  return image.steps
    .filter((s) => s.op === "COPY" || s.op === "ADD")
    .flatMap((s) => {
      const p = contextSource(image, s.op, s.args[0] ?? "");
      return p === null ? [] : [p];
    });
}

/** One regular file of the build context: path relative to the context, executable bit, sha256. */
export interface ContextFile {
  path: string;
  executable: boolean;
  sha256: string;
}

/**
 * The image's content hash (hex, 64): the Dockerfile, every context file the steps add (sorted by
 * path) and the --build-env values. Host build args (pip index, proxies) are left out: they say
 * where packages come from, not which.
 */
export function contentHash(dockerfile: string, files: ContextFile[], buildEnv: Record<string, string>): string {
  const h = createHash("sha256");
  h.update(`dockerfile\0${dockerfile}\0`);
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)))
    h.update(`file\0${f.path}\0${f.executable ? "x" : "-"}\0${f.sha256}\0`);
  for (const k of Object.keys(buildEnv).sort()) h.update(`env\0${k}\0${buildEnv[k]}\0`);
  return h.digest("hex");
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "")
    .slice(0, 64) || "image";

/** REGISTRY/NAME:HASH16 with --registry, else localhost/trellis-fn/NAME:HASH16 (the local cluster). */
export function imageRef(image: ImageSpec, hash: string, registry: string | undefined): string {
  const repo = registry
    ? `${registry.replace(/\/+$/, "")}/${slug(image.name)}`
    : `localhost/trellis-fn/${slug(image.name)}`;
  return `${repo}:${hash.slice(0, 16)}`;
}

/** --build-env KEY=VALUE (repeatable) as a map; a clear error naming the flag and the rule. */
export function parseBuildEnv(values: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf("=");
    const key = eq < 0 ? v : v.slice(0, eq);
    if (eq < 0 || !ENV_KEY.test(key))
      throw new CliError(
        `--build-env ${JSON.stringify(v)}: expected KEY=VALUE with KEY a variable name (letters, digits, _; not starting with a digit)`,
      );
    if (key in out) throw new CliError(`--build-env ${key}: given twice`);
    const value = v.slice(eq + 1);
    if (/[\0\r\n]/.test(value)) throw new CliError(`--build-env ${key}: the value must be a single line`);
    out[key] = value;
  }
  return out;
}

/** --registry: an image repository prefix such as host:port/team (no tag, no scheme). */
export function checkRegistry(registry: string | undefined): string | undefined {
  if (registry === undefined) return undefined;
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*\/?$/.test(registry))
    throw new CliError(
      `--registry ${JSON.stringify(registry)}: expected a repository prefix such as HOST[:PORT][/PATH] (lower case, no scheme, no tag)`,
    );
  return registry;
}

/**
 * Values for HOST_BUILD_ARGS from the machine: pip's configuration files (the text of
 * `python3 -m pip config list`, section.key='value') under the environment, which wins as it does
 * for pip. Only network settings pass; paths of this machine (find-links to a directory, cert)
 * mean nothing inside the image and stay out.
 */
export function hostBuildArgs(pipConfigList: string, env: Record<string, string | undefined>): Record<string, string> {
  const allowed = new Set<string>(HOST_BUILD_ARGS);
  const out: Record<string, string> = {};
  const sections = ["global", "download", "install"]; // later sections win, as for `pip install`
  const fromFiles = new Map<string, { rank: number; value: string }>();
  for (const line of pipConfigList.split("\n")) {
    const m = /^([^.\s]+)\.([a-z0-9-]+)=(['"])(.*)\3\s*$/.exec(line.trim());
    if (!m) continue;
    const rank = sections.indexOf(m[1]!);
    if (rank < 0) continue; // ":env:" lines repeat the environment, read below
    const key = `PIP_${m[2]!.toUpperCase().replace(/-/g, "_")}`;
    if (!allowed.has(key) || key === "PIP_CERT") continue;
    const prev = fromFiles.get(key);
    if (!prev || prev.rank <= rank) fromFiles.set(key, { rank, value: m[4]! });
  }
  for (const [k, v] of fromFiles) out[k] = v.value;
  for (const k of HOST_BUILD_ARGS) {
    const v = k === "PIP_CERT" ? undefined : env[k];
    if (v !== undefined && v !== "") out[k] = v;
  }
  const links = out.PIP_FIND_LINKS;
  if (links !== undefined && !links.split(/\s+/).every((l) => URL_SRC.test(l))) delete out.PIP_FIND_LINKS;
  return out;
}

/**
 * The CA bundle pip trusts on this machine (PIP_CERT, else `cert` of pip's files), or undefined.
 * A machine behind a TLS-inspecting proxy needs it inside RUN steps too; the builder mounts it there
 * for the build only, it is not part of the image.
 */
export function hostPipCert(pipConfigList: string, env: Record<string, string | undefined>): string | undefined {
  if (env.PIP_CERT) return env.PIP_CERT;
  let found: string | undefined;
  for (const line of pipConfigList.split("\n")) {
    const m = /^(global|download|install)\.cert=(['"])(.*)\2\s*$/.exec(line.trim());
    if (m) found = m[3];
  }
  return found;
}
