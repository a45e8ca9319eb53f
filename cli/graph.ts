// graph: a request's call tree (phase, duration, attempts, pod), each map item a row of its own
// (also when shards hold them); logs: the worker log of the pod that ran a call (or map item).
import { type Call, CliError, type Ctx, findCall, kube, requestCalls, requireCrds } from "./cluster.js";
import { KubeApiError } from "./kube.js";
import { type OutputFormat, formatDocument } from "./output.js";
import { LABEL } from "../protocol/index.js";

/** A passed tail link: its chain's head took its outcome, so it never gets a completion time. */
const isSettled = (c: Call): boolean => c.metadata.labels?.[LABEL.settled] === "true";

function duration(c: Call, now: number): string {
  if (isSettled(c)) return "-"; // its run ended when it delegated, which no field records
  const s = c.status ?? {};
  const from = Date.parse(String(s.startTime ?? c.metadata.creationTimestamp ?? ""));
  if (Number.isNaN(from)) return "-";
  const to = s.completionTime ? Date.parse(s.completionTime) : now;
  const ms = Math.max(0, to - from);
  return ms < 1000
    ? `${ms}ms`
    : ms < 60_000
      ? `${(ms / 1000).toFixed(1)}s`
      : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

/** Each call's children, in call order. */
function childrenByParent(calls: Call[]): Map<string, Call[]> {
  const kids = new Map<string, Call[]>();
  for (const c of calls) {
    const p = c.spec.parent;
    if (!p) continue;
    const list = kids.get(p);
    if (list) list.push(c);
    else kids.set(p, [c]);
  }
  for (const list of kids.values()) list.sort((a, b) => (a.spec.sequence ?? 0) - (b.spec.sequence ?? 0));
  return kids;
}

/** One row: name (indented), function, phase, duration, attempts, pod. */
function row(c: Call, indent: string, now: number): string[] {
  const s = c.status ?? {};
  const extra = s.tailCall
    ? ` → ${s.tailCall}${isSettled(c) ? " (settled)" : ""}`
    : c.spec.map
      ? " (map)"
      : c.spec.reduce
        ? " (reduce)"
        : "";
  return [
    `${indent}${c.metadata.name}`,
    `${c.spec.function}${extra}`,
    s.phase ?? "Pending",
    duration(c, now),
    String(s.attempts ?? 0),
    s.pod ?? "-",
  ];
}

/** The tree depth-first, children in call order, with each call's drawn prefix and depth; an iterative walk (graphs can be deep). */
export function walkTree(calls: Call[], root: string): { c: Call; indent: string; depth: number }[] {
  const kids = childrenByParent(calls);
  const byName = new Map(calls.map((c) => [c.metadata.name ?? "", c]));
  const out: { c: Call; indent: string; depth: number }[] = [];
  const stack: { c: Call; prefix: string; branch: string; depth: number }[] = [];
  const top = byName.get(root);
  if (top) stack.push({ c: top, prefix: "", branch: "", depth: 0 });
  while (stack.length) {
    const { c, prefix, branch, depth } = stack.pop()!;
    out.push({ c, indent: prefix + branch, depth });
    const children = kids.get(c.metadata.name ?? "") ?? [];
    const childPrefix = prefix + (branch === "├─ " ? "│  " : branch === "└─ " ? "   " : "");
    for (let i = children.length - 1; i >= 0; i--)
      stack.push({
        c: children[i]!,
        prefix: childPrefix,
        branch: i === children.length - 1 ? "└─ " : "├─ ",
        depth: depth + 1,
      });
  }
  return out;
}

/** Rows of the tree: name (indented), function, phase, duration, attempts, pod. */
export function treeRows(calls: Call[], root: string, now = Date.now()): string[][] {
  return walkTree(calls, root).map(({ c, indent }) => row(c, indent, now));
}

export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  // A loop, not Math.max(...): a 100,000-item map is more arguments than a call takes.
  const widths = header.map((_, i) => all.reduce((w, r) => Math.max(w, [...(r[i] ?? "")].length), 0));
  return all
    .map((r) => r.map((v, i) => (i === r.length - 1 ? v : v + " ".repeat(widths[i]! - [...v].length))).join("  "))
    .join("\n");
}

/** The structured form of the tree for --output json|yaml: each call with its parent and error. */
export function graphDocument(calls: Call[], request: string, now = Date.now()) {
  return {
    request,
    calls: walkTree(calls, request).map(({ c, depth }) => {
      const s = c.status ?? {};
      return {
        name: c.metadata.name ?? "",
        function: c.spec.function,
        ...(c.spec.parent ? { parent: c.spec.parent } : {}),
        depth,
        phase: s.phase ?? "Pending",
        duration: duration(c, now),
        attempts: s.attempts ?? 0,
        ...(s.pod ? { pod: s.pod } : {}),
        ...(s.tailCall ? { tailCall: s.tailCall } : {}),
        ...(isSettled(c) ? { settled: true } : {}),
        ...(c.spec.map ? { kind: "map" } : c.spec.reduce ? { kind: "reduce" } : {}),
        ...(s.error ? { error: { type: s.error.type, message: s.error.message, reason: s.error.reason } } : {}),
      };
    }),
  };
}

export async function graph(ctx: Ctx, request: string, output: OutputFormat = "table"): Promise<number> {
  await requireCrds(ctx);
  const calls = await requestCalls(ctx, request);
  const root = calls[0]!;
  if (root.spec.parent)
    throw new CliError(
      `${request} is not a request but a call inside request ${root.spec.request}: kubectl trellis graph ${root.spec.request}`,
    );
  if (output !== "table") {
    process.stdout.write(formatDocument(graphDocument(calls, request), output));
    return 0;
  }
  process.stdout.write(
    `${table(["CALL", "FUNCTION", "PHASE", "DURATION", "ATTEMPTS", "POD"], treeRows(calls, request))}\n`,
  );
  return 0;
}

export async function logs(ctx: Ctx, call: string, opts: { tail?: number }): Promise<number> {
  await requireCrds(ctx);
  const c = await findCall(ctx, call);
  const pod = c.status?.pod;
  if (!pod) throw new CliError(`call ${call} has not run on a pod yet (phase ${c.status?.phase ?? "Pending"})`);
  let text: string;
  try {
    // The log endpoint answers text/plain: read the stream raw.
    const res = await ctx.client.stream(
      `/api/v1/namespaces/${ctx.namespace}/pods/${pod}/log`,
      { container: "worker", ...(opts.tail ? { tailLines: opts.tail } : {}) },
      new AbortController().signal,
    );
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    text = Buffer.concat(chunks).toString("utf8");
  } catch (e) {
    if (e instanceof KubeApiError && e.statusCode === 404)
      throw new CliError(
        `pod ${pod} that ran call ${call} is gone (pods scale to zero when idle); its logs went with it`,
      );
    if (e instanceof KubeApiError) throw e;
    throw new CliError(`cannot read the logs of pod ${pod}: ${(e as Error).message}`);
  }
  process.stdout.write(text);
  return 0;
}

export { kube };
