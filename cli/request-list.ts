// requests APP: an application's requests (root FunctionCalls), newest first; cancel REQUEST:
// deletes a running request's root call, which cancels every call of its graph.
import { LABEL, PHASES, TERMINAL_PHASES, labelValue } from "../protocol/index.js";
import { type Call, CliError, type Ctx, appPath, fcPath, getCall, kube, requireCrds } from "./cluster.js";
import { table } from "./graph.js";
import { KubeApiError } from "./kube.js";
import { type OutputFormat, age, formatDocument, humanDuration } from "./output.js";

export { PHASES };
const TERMINAL = new Set<string>(TERMINAL_PHASES);

export interface RequestRow {
  name: string;
  phase: string;
  created: string;
  started?: string;
  finished?: string;
  durationMs?: number;
  error?: string;
}

const createdAt = (c: Call) => String(c.metadata.creationTimestamp ?? "");
const created = (c: Call) => Date.parse(createdAt(c)) || 0;

/** The rows of an application's requests: roots only, newest first, filtered by phase. */
export function requestRows(calls: Call[], opts: { phase?: string; limit?: number; now?: number }): RequestRow[] {
  const now = opts.now ?? Date.now();
  const roots = calls
    .filter((c) => !c.spec.parent)
    .filter((c) => !opts.phase || (c.status?.phase ?? "Pending") === opts.phase)
    .sort((a, b) => created(b) - created(a) || (b.metadata.name ?? "").localeCompare(a.metadata.name ?? ""));
  return roots.slice(0, opts.limit ?? roots.length).map((c) => {
    const s = c.status ?? {};
    const from = Date.parse(String(s.startTime ?? c.metadata.creationTimestamp ?? ""));
    const to = s.completionTime ? Date.parse(s.completionTime) : now;
    const e = s.error;
    return {
      name: c.metadata.name ?? "",
      phase: s.phase ?? "Pending",
      created: createdAt(c),
      ...(s.startTime ? { started: String(s.startTime) } : {}),
      ...(s.completionTime ? { finished: String(s.completionTime) } : {}),
      ...(Number.isNaN(from) ? {} : { durationMs: Math.max(0, to - from) }),
      ...(e ? { error: `${e.type ?? "Error"}: ${e.message ?? ""}` } : {}),
    };
  });
}

export function requestTable(rows: RequestRow[], now = Date.now()): string {
  return table(
    ["REQUEST", "PHASE", "AGE", "DURATION", "ERROR"],
    rows.map((r) => [
      r.name,
      r.phase,
      age(now - (Date.parse(r.created) || now)),
      r.durationMs === undefined ? "-" : humanDuration(r.durationMs),
      r.error ? oneLine(r.error, 80) : "",
    ]),
  );
}

const oneLine = (s: string, max: number) => {
  const line = s.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

export async function listRequests(
  ctx: Ctx,
  app: string,
  opts: { phase?: string; limit?: number; output: OutputFormat },
): Promise<number> {
  await requireCrds(ctx);
  try {
    await kube(ctx, "GET", appPath(ctx.namespace, app));
  } catch (e) {
    if (e instanceof KubeApiError && e.statusCode === 404)
      throw new CliError(`application ${app} not found in namespace ${ctx.namespace}`);
    throw e;
  }
  const list = await kube<{ items: Call[] }>(ctx, "GET", fcPath(ctx.namespace), {
    query: { labelSelector: `${LABEL.application}=${labelValue(app)},!${LABEL.parent}` },
  });
  // The label value may be a hash of a long name: keep only this application's calls.
  const calls = list.items.filter((c) => c.spec.application === app);
  const rows = requestRows(calls, opts);
  if (opts.output === "table") {
    if (rows.length === 0) {
      process.stderr.write(
        `no requests${opts.phase ? ` in phase ${opts.phase}` : ""} of application ${app} in namespace ${ctx.namespace}\n`,
      );
      return 0;
    }
    process.stdout.write(`${requestTable(rows)}\n`);
    return 0;
  }
  process.stdout.write(formatDocument({ requests: rows }, opts.output));
  return 0;
}

export async function cancelRequest(ctx: Ctx, request: string): Promise<number> {
  await requireCrds(ctx);
  const root = await getCall(ctx, request);
  if (root.spec.parent)
    throw new CliError(
      `${request} is a call inside request ${root.spec.request}, not a request: kubectl trellis cancel ${root.spec.request}`,
    );
  const phase = root.status?.phase ?? "Pending";
  if (TERMINAL.has(phase)) throw new CliError(`request ${request} already finished (${phase}); nothing to cancel`);
  try {
    // Deleting the root cancels its running calls (the operator aborts their attempts) and lets
    // the garbage collector take the graph, as the HTTP API's DELETE does.
    await kube(ctx, "DELETE", fcPath(ctx.namespace, request), {
      body: { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background" },
    });
  } catch (e) {
    if (e instanceof KubeApiError && e.statusCode === 404)
      throw new CliError(`request ${request} is already gone from namespace ${ctx.namespace}`);
    throw e;
  }
  process.stdout.write(`request ${request} cancelled (its calls are aborted and deleted)\n`);
  return 0;
}
