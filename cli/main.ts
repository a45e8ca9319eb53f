// kubectl trellis: invoke, output, graph, logs and deploy for Trellis applications. kubectl finds
// it on PATH as kubectl-trellis; it reads KUBECONFIG like kubectl.
import { parseArgs } from "node:util";
import { CliError, context } from "./cluster.js";
import { deploy } from "./deploy.js";
import { graph, logs } from "./graph.js";
import { KubeApiError, loadKubeConfig } from "./kube.js";
import { invoke, output } from "./requests.js";

const USAGE = `kubectl trellis: durable Python function graphs on Kubernetes

Usage:
  kubectl trellis invoke APP [--input JSON] [--api URL] [--token TOKEN] [-q]
  kubectl trellis output REQUEST [--api URL]
  kubectl trellis graph REQUEST
  kubectl trellis logs CALL [--tail N]
  kubectl trellis deploy FILE.py [--name NAME] [--image IMAGE] [--entrypoint FN] [--dry-run]

Common flags:
  -n, --namespace NS          namespace (default: the kubeconfig context's, else "default")
  --operator-namespace NS     where the operator runs (default trellis-system)

invoke goes through the HTTP API when --api or TRELLIS_API_URL is set and answers (token from
--token, TRELLIS_TOKEN, or the kubeconfig user's token), else it creates the FunctionCall directly.
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

async function main(argv: string[]): Promise<number> {
  const { values: v, positionals } = parse(argv);
  const [command, arg] = positionals;
  if (v.help || !command) {
    process.stdout.write(USAGE);
    return command || v.help ? 0 : 1;
  }
  const need = (what: string) => {
    if (!arg) throw new CliError(`${command}: missing ${what}\n\n${USAGE}`);
    return arg;
  };
  const ctxOpts = { namespace: v.namespace, operatorNamespace: v["operator-namespace"] };
  const apiOpts = apiOptions(v);
  switch (command) {
    case "invoke": {
      const app = need("APP");
      return invoke(await context(ctxOpts), app, { input: v.input, api: apiOpts, quiet: v.quiet });
    }
    case "output":
      return output(await context(ctxOpts), need("REQUEST"), apiOpts);
    case "graph":
      return graph(await context(ctxOpts), need("REQUEST"));
    case "logs": {
      const call = need("CALL");
      const tail = tailOption(v.tail);
      return logs(await context(ctxOpts), call, { tail });
    }
    case "deploy": {
      const file = need("FILE.py");
      return deploy(await context(ctxOpts), file, {
        name: v.name,
        image: v.image,
        entrypoint: v.entrypoint,
        dryRun: v["dry-run"],
      });
    }
    default:
      throw new CliError(`unknown command ${command}\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof CliError) process.stderr.write(`error: ${e.message}\n`);
    else if (e instanceof KubeApiError)
      process.stderr.write(`error: the API server answered ${e.statusCode}: ${e.message}\n`);
    else process.stderr.write(`error: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
