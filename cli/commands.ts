// The commands of kubectl trellis: the flags, their checks and the dispatch (cli/main.ts runs them).
import { parseArgs } from "node:util";
import { CliError, context } from "./cluster.js";
import { build, buildImages } from "./build.js";
import { clusterLookup, complete, completionScript, printCompletion } from "./completion.js";
import { deploy } from "./deploy.js";
import type { FunctionImage } from "./image-build.js";
import { graph, logs } from "./graph.js";
import { loadKubeConfig } from "./kube.js";
import { outputFormat } from "./output.js";
import { PHASES, cancelRequest, listRequests } from "./request-list.js";
import { invoke, output } from "./requests.js";
import { ui } from "./ui-proxy.js";

const USAGE = `kubectl trellis: durable Python function graphs on Kubernetes

Usage:
  kubectl trellis invoke APP [--input JSON] [--api URL] [--token TOKEN] [-q]
  kubectl trellis output REQUEST [--api URL]
  kubectl trellis graph REQUEST [-o table|json|yaml]
  kubectl trellis logs CALL [--tail N]
  kubectl trellis requests APP [--phase PHASE] [--limit N] [-o table|json|yaml]
  kubectl trellis cancel REQUEST
  kubectl trellis deploy FILE.py [--entrypoint FN] [--name NAME] [--image IMAGE] [--no-build] [BUILD FLAGS]
                                 [--dry-run [-o json|yaml]]
  kubectl trellis build FILE.py [--registry REG] [--build-env KEY=VALUE]... [--builder buildah|podman|docker]
                                [--base-image IMAGE] [--host-apt-sources] [--dry-run]
  kubectl trellis ui [--api URL] [--token TOKEN] [--port N] [--no-open]
  kubectl trellis completion bash|zsh

deploy applies an Application for every @application() in the file (--entrypoint picks one;
--name renames it); it first builds the Images the functions name (as build does) and sets each
function's image, unless --no-build. build turns each distinct Image into a Dockerfile on top of
which the Trellis runtime runs, builds it with buildah, podman or docker, names it by content hash,
and pushes it to --registry or imports it into the local cluster. cancel deletes a running
request's root call, which aborts all its calls. ui serves the web view on 127.0.0.1 (a read-only
proxy to the HTTP API that adds your token) and opens it.
Shell completion: put bin/kubectl_complete-trellis on PATH next to kubectl-trellis (kubectl 1.26+).

Common flags:
  -n, --namespace NS          namespace (default: the kubeconfig context's, else "default")
  --operator-namespace NS     where the operator runs (default trellis-system)

invoke goes through the HTTP API when --api or TRELLIS_API_URL is set and answers (token from
--token, TRELLIS_TOKEN, or the kubeconfig user's token), else it creates the FunctionCall directly.
Answers 502/503/504/429 (an operator restarting or failing over) are retried with backoff for up
to TRELLIS_API_RETRY_SECONDS (default 120), with one idempotency key, so a request starts once.
The API takes tokens issued for its audience (default trellis):
  --token "$(kubectl create token <serviceaccount> -n NS --audience trellis)"
`;

const OPTIONS = {
  namespace: { type: "string", short: "n" },
  "operator-namespace": { type: "string" },
  input: { type: "string", short: "i" },
  api: { type: "string" },
  token: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  tail: { type: "string" },
  name: { type: "string" },
  image: { type: "string" },
  entrypoint: { type: "string" },
  "dry-run": { type: "boolean" },
  output: { type: "string", short: "o" },
  phase: { type: "string" },
  limit: { type: "string" },
  port: { type: "string" },
  "no-build": { type: "boolean" },
  registry: { type: "string" },
  "build-env": { type: "string", multiple: true },
  builder: { type: "string" },
  "base-image": { type: "string" },
  "host-apt-sources": { type: "boolean" },
  "no-open": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function kubeconfigToken(): string | undefined {
  try {
    return loadKubeConfig().getCurrentUser()?.token || undefined;
  } catch {
    return undefined;
  }
}

type Values = ReturnType<typeof parse>["values"];

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (e) {
    throw new CliError(`${(e as Error).message}\n\n${USAGE}`);
  }
}

/** The HTTP API: --api / TRELLIS_API_URL, token from --token, TRELLIS_TOKEN or the kubeconfig user. */
function apiOptions(v: Values) {
  return {
    url: v.api ?? process.env.TRELLIS_API_URL,
    token: v.token ?? process.env.TRELLIS_TOKEN ?? kubeconfigToken(),
  };
}

function tailOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const tail = Number(value);
  if (!(Number.isInteger(tail) && tail > 0)) throw new CliError("--tail: must be a positive integer");
  return tail;
}

function buildOptions(v: Values) {
  return {
    registry: v.registry,
    buildEnv: v["build-env"],
    builder: v.builder,
    baseImage: v["base-image"],
    hostAptSources: v["host-apt-sources"],
  };
}

/** Commands on a file that need no cluster: build. */
function fileCommand(command: string, arg: string | undefined, v: Values): Promise<number> {
  if (command !== "build") throw new CliError(`unknown command ${command}\n\n${USAGE}`);
  if (!arg) throw new CliError(`build: missing FILE.py\n\n${USAGE}`);
  return build(arg, { ...buildOptions(v), dryRun: v["dry-run"] });
}

async function deployCommand(
  file: string,
  v: Values,
  ctxOpts: { namespace?: string; operatorNamespace?: string },
): Promise<number> {
  if (v.output !== undefined && !v["dry-run"])
    throw new CliError("--output: deploy prints manifests only with --dry-run");
  const output = outputFormat(v.output, ["json", "yaml"]);
  const ctx = await context(ctxOpts);
  const build = async (images: FunctionImage[]) => {
    try {
      // A dry run names the images (content hashes) without building them.
      return await buildImages(ctx, file, { ...buildOptions(v), images, namesOnly: v["dry-run"] });
    } catch (e) {
      if (e instanceof CliError)
        throw new CliError(`${e.message}\n(deploy builds the Images the functions name first; --no-build skips that)`);
      throw e;
    }
  };
  return deploy(ctx, file, {
    name: v.name,
    image: v.image,
    entrypoint: v.entrypoint,
    dryRun: v["dry-run"],
    output,
    ...(v["no-build"] ? {} : { build }),
  });
}

function portOption(value: string | undefined): number {
  if (value === undefined) return 0;
  const n = Number(value);
  if (!(Number.isInteger(n) && n >= 0 && n <= 65535)) throw new CliError("--port: must be an integer from 0 to 65535");
  return n;
}

function limitOption(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(Number.isInteger(n) && n > 0)) throw new CliError("--limit: must be a positive integer");
  return n;
}

function phaseOption(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const phase = PHASES.find((p) => p.toLowerCase() === value.toLowerCase());
  if (!phase) throw new CliError(`--phase ${JSON.stringify(value)}: must be one of ${PHASES.join(", ")}`);
  return phase;
}

/** Shell completion (kubectl_complete-trellis): never fails loudly, the shell shows nothing instead. */
async function completeWords(words: string[]): Promise<number> {
  const ctxFor = (namespace: string | undefined) => context({ namespace });
  printCompletion(await complete(words.length ? words : [""], clusterLookup(ctxFor)));
  return 0;
}

/** Arguments that name an object in the cluster (they end up in API paths). */
const NAMED = new Set(["APP", "REQUEST", "CALL"]);
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function objectName(what: string, value: string): string {
  if (value.length <= 253 && DNS_SUBDOMAIN.test(value)) return value;
  throw new CliError(
    `${what} ${JSON.stringify(value.slice(0, 300))}: must be a Kubernetes object name (lowercase letters, digits, '-' and '.', at most 253 characters)`,
  );
}

export function namespaceOption(flag: string, value: string | undefined): string | undefined {
  if (value === undefined || (value.length <= 63 && DNS_LABEL.test(value))) return value;
  throw new CliError(
    `${flag} ${JSON.stringify(value.slice(0, 300))}: must be a namespace name (lowercase letters, digits and '-', at most 63 characters)`,
  );
}

/** Runs one command line; the exit code. Errors meant for the user are CliErrors. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === "__complete") return completeWords(argv.slice(1));
  return command(argv);
}

async function command(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv);
  const [command, arg] = positionals;
  if (v.help || !command) {
    process.stdout.write(USAGE);
    return command || v.help ? 0 : 1;
  }
  const need = (what: string) => {
    if (!arg) throw new CliError(`${command}: missing ${what}\n\n${USAGE}`);
    return NAMED.has(what) ? objectName(what, arg) : arg;
  };
  const ctxOpts = {
    namespace: namespaceOption("--namespace", v.namespace),
    operatorNamespace: namespaceOption("--operator-namespace", v["operator-namespace"]),
  };
  const apiOpts = apiOptions(v);
  switch (command) {
    case "invoke": {
      const app = need("APP");
      return invoke(await context(ctxOpts), app, { input: v.input, api: apiOpts, quiet: v.quiet });
    }
    case "output":
      return output(await context(ctxOpts), need("REQUEST"), apiOpts);
    case "graph": {
      const request = need("REQUEST");
      return graph(await context(ctxOpts), request, outputFormat(v.output, ["table", "json", "yaml"]));
    }
    case "requests": {
      const app = need("APP");
      const opts = {
        phase: phaseOption(v.phase),
        limit: limitOption(v.limit),
        output: outputFormat(v.output, ["table", "json", "yaml"]),
      };
      return listRequests(await context(ctxOpts), app, opts);
    }
    case "cancel":
      return cancelRequest(await context(ctxOpts), need("REQUEST"));
    case "ui":
      return ui({ url: apiOpts.url ?? "", token: apiOpts.token }, { port: portOption(v.port), open: !v["no-open"] });
    case "completion":
      process.stdout.write(completionScript(need("bash|zsh")));
      return 0;
    case "logs": {
      const call = need("CALL");
      const tail = tailOption(v.tail);
      return logs(await context(ctxOpts), call, { tail });
    }
    case "deploy":
      return deployCommand(need("FILE.py"), v, ctxOpts);
    default:
      return fileCommand(command, arg, v);
  }
}
