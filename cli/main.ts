// kubectl trellis: invoke, output, graph, logs, requests, cancel, deploy, build and ui for Trellis
// applications. kubectl finds it on PATH as kubectl-trellis; it reads KUBECONFIG like kubectl.
import { CliError } from "./cluster.js";
import { main } from "./commands.js";
import { KubeApiError } from "./kube.js";

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
