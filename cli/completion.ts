// Shell completion. kubectl (1.26+) completes `kubectl trellis ...` by running the executable
// kubectl_complete-trellis with the words typed so far, the last one being the word under the
// cursor, and reads candidates one per line then ":<directive>" (cobra's __complete protocol);
// `kubectl trellis __complete ...` answers that, and `completion bash` wires the plugin's own name.
import { PHASES } from "../protocol/index.js";
import { type Call, CliError, type Ctx, appPath, expandCalls, fcPath, kube } from "./cluster.js";

/** cobra's ShellCompDirective values. */
const NO_FILES = 4;
const FILES = 0;

export interface CommandSpec {
  /** What the positional argument is: completed from the cluster, or a file. */
  arg?: "application" | "request" | "call" | "file";
  flags: string[];
}

const BUILD_FLAGS = ["--registry", "--build-env", "--builder", "--base-image", "--host-apt-sources"];

export const COMMON_FLAGS = ["--namespace", "--operator-namespace", "--help"];

export const COMMANDS: Record<string, CommandSpec> = {
  invoke: { arg: "application", flags: ["--input", "--api", "--token", "--quiet"] },
  output: { arg: "request", flags: ["--api", "--token"] },
  graph: { arg: "request", flags: ["--output"] },
  logs: { arg: "call", flags: ["--tail"] },
  requests: { arg: "application", flags: ["--phase", "--limit", "--output"] },
  cancel: { arg: "request", flags: [] },
  deploy: {
    arg: "file",
    flags: ["--name", "--image", "--entrypoint", "--dry-run", "--output", "--no-build", ...BUILD_FLAGS],
  },
  build: { arg: "file", flags: ["--dry-run", ...BUILD_FLAGS] },
  ui: { flags: ["--api", "--token", "--port", "--no-open"] },
  completion: { flags: [] },
};

/** Flags whose value is one of a few words. */
const FLAG_VALUES: Record<string, string[]> = {
  "--output": ["table", "json", "yaml"],
  "-o": ["table", "json", "yaml"],
  "--phase": [...PHASES],
  "--builder": ["buildah", "podman", "docker"],
};
/** Flags that take a value (the next word is not a positional). */
const VALUE_FLAGS = new Set([
  "--namespace",
  "-n",
  "--operator-namespace",
  "--input",
  "-i",
  "--api",
  "--token",
  "--tail",
  "--name",
  "--image",
  "--entrypoint",
  "--output",
  "-o",
  "--phase",
  "--limit",
  "--port",
  "--registry",
  "--build-env",
  "--builder",
  "--base-image",
]);

export type Lookup = (
  kind: "application" | "request" | "call" | "namespace",
  namespace: string | undefined,
) => Promise<string[]>;

/** The positional words and the -n namespace among the words typed so far. */
function scan(typed: string[]): { positionals: string[]; namespace?: string } {
  const positionals: string[] = [];
  let namespace: string | undefined;
  for (let i = 0; i < typed.length; i++) {
    const w = typed[i]!;
    if (!w.startsWith("-")) positionals.push(w);
    else if (!w.includes("=") && VALUE_FLAGS.has(w)) {
      if (w === "-n" || w === "--namespace") namespace = typed[i + 1];
      i++;
    }
  }
  return { positionals, namespace };
}

const NAMESPACE_FLAGS = new Set(["-n", "--namespace", "--operator-namespace"]);

/** The candidates and the directive for `words` (the last is the partial word). Pure but for `lookup`. */
export async function complete(words: string[], lookup: Lookup): Promise<{ candidates: string[]; directive: number }> {
  const typed = words.slice(0, -1);
  const partial = words.at(-1) ?? "";
  const { positionals, namespace } = scan(typed);
  const prev = typed.at(-1) ?? "";
  const matching = (list: string[]) => ({ candidates: list.filter((c) => c.startsWith(partial)), directive: NO_FILES });
  const none = { candidates: [], directive: NO_FILES };
  if (FLAG_VALUES[prev]) return matching(FLAG_VALUES[prev]);
  if (NAMESPACE_FLAGS.has(prev)) return matching(await lookup("namespace", undefined).catch(() => []));
  if (VALUE_FLAGS.has(prev)) return none;
  const [command] = positionals;
  if (command === undefined) return matching(Object.keys(COMMANDS));
  const spec = COMMANDS[command];
  if (!spec) return none;
  if (partial.startsWith("-")) return matching([...spec.flags, ...COMMON_FLAGS]);
  if (command === "completion" && positionals.length === 1) return matching(["bash", "zsh"]);
  if (positionals.length > 1 || !spec.arg) return none;
  if (spec.arg === "file") return { candidates: [], directive: FILES };
  return matching(await lookup(spec.arg, namespace).catch(() => []));
}

/** Names from the cluster: applications, requests (root calls) or calls of the namespace. */
export function clusterLookup(ctxFor: (namespace: string | undefined) => Promise<Ctx>): Lookup {
  return async (kind, namespace) => {
    const ctx = await ctxFor(namespace);
    if (kind === "namespace") {
      const list = await kube<{ items: { metadata: { name: string } }[] }>(ctx, "GET", "/api/v1/namespaces");
      return list.items.map((n) => n.metadata.name);
    }
    if (kind === "application") {
      const list = await kube<{ items: { metadata: { name: string } }[] }>(ctx, "GET", appPath(ctx.namespace));
      return list.items.map((a) => a.metadata.name);
    }
    const list = await kube<{ items: Call[] }>(ctx, "GET", fcPath(ctx.namespace), {
      query: kind === "request" ? { labelSelector: "!trellis.dev/parent", limit: 500 } : { limit: 500 },
    });
    // Map items held by shards are calls by name; a shard is none.
    return expandCalls(list.items).map((c) => c.metadata.name ?? "");
  };
}

export function printCompletion(result: { candidates: string[]; directive: number }): void {
  process.stdout.write(`${result.candidates.map((c) => `${c}\n`).join("")}:${result.directive}\n`);
}

/** A bash completion script for `kubectl-trellis` run by its own name (kubectl uses kubectl_complete-trellis). */
export function completionScript(shell: string): string {
  const body = `# kubectl-trellis completion for bash (zsh: autoload -U +X bashcompinit && bashcompinit first)
_kubectl_trellis() {
  local out directive
  out=$(kubectl-trellis __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return
  directive=\${out##*:}
  out=\${out%:*}
  COMPREPLY=($(compgen -W "$out" -- "\${COMP_WORDS[COMP_CWORD]}"))
  if [ "$directive" = 0 ] && [ \${#COMPREPLY[@]} -eq 0 ]; then COMPREPLY=($(compgen -f -- "\${COMP_WORDS[COMP_CWORD]}")); fi
}
complete -F _kubectl_trellis kubectl-trellis
`;
  if (shell === "bash" || shell === "zsh") return body;
  throw new CliError(`completion: unknown shell ${JSON.stringify(shell)} (bash or zsh)`);
}
