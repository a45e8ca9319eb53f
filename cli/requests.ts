// invoke and output: a request goes through the HTTP API when it answers, else straight to the
// cluster as a root FunctionCall; its progress is followed with a watch on the request's calls.
// Calls to the API wait out an operator restart or failover (api-retry.ts).
import { randomUUID } from "node:crypto";
import { createInterface } from "node:readline";
import { LABEL, type ValueRef, labelValue, newRequest } from "../protocol/index.js";
import {
  type Call,
  CliError,
  type Ctx,
  appPath,
  expandCalls,
  fcPath,
  getCall,
  kube,
  requestCalls,
  requireCrds,
  requireOperator,
} from "./cluster.js";
import { KubeApiError } from "./kube.js";
import { ApiRetryError, fetchWithRetry } from "./api-retry.js";

export interface ApiOpts {
  url?: string;
  token?: string;
}

const TERMINAL = ["Succeeded", "Failed", "Cancelled"];
const INLINE_LIMIT = 64 * 1024;

interface ApiCall {
  body?: unknown;
  accept?: string;
  idempotencyKey?: string;
  /** The caller has another way when the API cannot be reached: a connection error is thrown at once. */
  stopOnConnectionError?: boolean;
}

/** One call to the HTTP API, retried on transient failures until TRELLIS_API_RETRY_SECONDS. */
async function api(o: ApiOpts, method: string, path: string, call: ApiCall = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: call.accept ?? "application/json" };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (call.body !== undefined) headers["content-type"] = "application/json";
  // The same key on every attempt: a retried create returns the request a lost answer had started.
  if (call.idempotencyKey) headers["idempotency-key"] = call.idempotencyKey;
  try {
    return await fetchWithRetry(
      `${o.url!.replace(/\/$/, "")}${path}`,
      { method, headers, ...(call.body !== undefined ? { body: JSON.stringify(call.body) } : {}) },
      { stopOnConnectionError: call.stopOnConnectionError },
    );
  } catch (e) {
    if (e instanceof ApiRetryError) throw new CliError(e.message);
    throw e;
  }
}

async function apiError(r: Response, what: string): Promise<CliError> {
  const text = await r.text();
  let message = text;
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? text;
  } catch {
    // not JSON: keep the text
  }
  return new CliError(`${what}: HTTP ${r.status}: ${message}`);
}

export async function invoke(
  ctx: Ctx,
  app: string,
  opts: { input?: string; api: ApiOpts; quiet?: boolean },
): Promise<number> {
  let input: unknown;
  if (opts.input !== undefined) {
    try {
      input = JSON.parse(opts.input);
    } catch (e) {
      throw new CliError(`--input: must be JSON (${(e as Error).message})`);
    }
  }
  await requireCrds(ctx);
  await requireOperator(ctx);
  let appObj: { spec: { entrypoint: string } };
  try {
    appObj = await kube(ctx, "GET", appPath(ctx.namespace, app));
  } catch (e) {
    if (e instanceof KubeApiError && e.statusCode === 404)
      throw new CliError(`application ${app} not found in namespace ${ctx.namespace} (kubectl trellis deploy FILE.py)`);
    throw e;
  }

  // One key for every attempt through the API and for the direct create: both name the request
  // after it, so a create whose answer was lost and a second try are one request, not two.
  const key = randomUUID();
  const inline = input === undefined || JSON.stringify(input).length <= INLINE_LIMIT;
  let request: string | undefined;
  let via = "cluster";
  if (opts.api.url) {
    request = await invokeViaApi(opts.api, ctx.namespace, app, input, key, inline);
    if (request) via = opts.api.url;
  }
  if (!request) {
    if (!inline)
      throw new CliError(`--input: larger than ${INLINE_LIMIT} bytes; large inputs need the HTTP API (--api URL)`);
    const root = newRequest({
      namespace: ctx.namespace,
      application: app,
      function: appObj.spec.entrypoint,
      idempotencyKey: key,
      ...(input === undefined ? {} : { args: [{ value: input }] }),
    });
    try {
      await kube(ctx, "POST", fcPath(ctx.namespace), { body: root });
    } catch (e) {
      // Already there: the API created it before its connection broke. It is this request.
      if (!(e instanceof KubeApiError && e.statusCode === 409)) throw e;
    }
    request = root.metadata.name!;
  }
  process.stderr.write(`request ${request} created (via ${via}) in namespace ${ctx.namespace}\n`);
  const root = await follow(ctx, request, !opts.quiet);
  return printOutcome(ctx, root, opts.api);
}

/**
 * Creates the request through the HTTP API with idempotency key `key`: its id. When the API cannot
 * be reached and `canFallBack`, undefined at once (the caller creates the FunctionCall directly,
 * under the name the same key gives); otherwise connection errors are retried like 502/503/504.
 */
export async function invokeViaApi(
  o: ApiOpts,
  namespace: string,
  app: string,
  input: unknown,
  key: string,
  canFallBack: boolean,
): Promise<string | undefined> {
  let r: Response;
  try {
    r = await api(o, "POST", `/v1/namespaces/${namespace}/applications/${app}`, {
      body: input,
      idempotencyKey: key,
      stopOnConnectionError: canFallBack,
    });
  } catch (e) {
    if (e instanceof CliError) throw e;
    const why = e instanceof Error ? e.message + (e.cause instanceof Error ? ` (${e.cause.message})` : "") : String(e);
    if (!canFallBack) throw new CliError(`cannot reach the HTTP API at ${o.url}: ${why}`);
    process.stderr.write(
      `note: the HTTP API at ${o.url} does not answer (${why}); creating the FunctionCall directly\n`,
    );
    return undefined;
  }
  if (!r.ok) throw await apiError(r, `invoke ${app}`);
  return ((await r.json()) as { request_id: string }).request_id;
}

const isTerminal = (c: Call) => TERMINAL.includes(c.status?.phase ?? "");

/** "<request> <phase> · calls N (n phase, ...) · progress i/n · 1.2s" */
export function progressText(request: string, calls: Map<string, Call>, started: number): string {
  const root = calls.get(request);
  const counts: Record<string, number> = {};
  // Map items count as the calls they are, also when shards hold them.
  const all = expandCalls(calls.values());
  for (const c of all) {
    const phase = c.status?.phase ?? "Pending";
    counts[phase] = (counts[phase] ?? 0) + 1;
  }
  const p = root?.status?.progress;
  return [
    `${request} ${root?.status?.phase ?? "Pending"}`,
    `calls ${all.length} (${Object.entries(counts)
      .map(([k, v]) => `${v} ${k.toLowerCase()}`)
      .join(", ")})`,
    ...(p ? [`progress ${p.current}/${p.total}${p.message ? ` ${p.message}` : ""}`] : []),
    `${((Date.now() - started) / 1000).toFixed(1)}s`,
  ].join(" · ");
}

/** The progress line on stderr: redrawn in place on a terminal, else printed when it changes. */
function progressLine(request: string, calls: Map<string, Call>, show: boolean) {
  const started = Date.now();
  const tty = process.stderr.isTTY;
  const sansTime = (line: string) => line.replace(/ · [\d.]+s$/, "");
  let last = "";
  const draw = (final = false) => {
    if (!show) return;
    const line = progressText(request, calls, started);
    if (tty) process.stderr.write(`\r\x1b[K${line}${final ? "\n" : ""}`);
    else if (sansTime(line) !== sansTime(last) || final) process.stderr.write(`${line}\n`);
    last = line;
  };
  const ticker = show && tty ? setInterval(() => draw(), 200) : undefined;
  const stop = () => {
    if (ticker) clearInterval(ticker);
    draw(true);
  };
  return { draw, stop };
}

/** Lists the request's calls into `calls`; the list's resourceVersion. */
async function listCalls(ctx: Ctx, request: string, calls: Map<string, Call>): Promise<string> {
  const list = await kube<{ items: Call[]; metadata: { resourceVersion: string } }>(ctx, "GET", fcPath(ctx.namespace), {
    query: { labelSelector: `${LABEL.request}=${labelValue(request)}` },
  });
  calls.clear();
  for (const c of list.items) calls.set(c.metadata.name ?? "", c);
  if (!calls.has(request)) calls.set(request, await getCall(ctx, request));
  return list.metadata.resourceVersion;
}

/** Applies watch events to `calls`: the root once it finished, or undefined when the watch ends (list again). */
async function watchCalls(
  ctx: Ctx,
  request: string,
  resourceVersion: string,
  calls: Map<string, Call>,
  changed: () => void,
): Promise<Call | undefined> {
  const ac = new AbortController();
  const res = await ctx.client.stream(
    fcPath(ctx.namespace),
    { watch: "true", labelSelector: `${LABEL.request}=${labelValue(request)}`, resourceVersion, timeoutSeconds: 300 },
    ac.signal,
  );
  try {
    for await (const line of createInterface({ input: res })) {
      if (!line.trim()) continue;
      const ev = JSON.parse(line) as { type: string; object: Call };
      if (ev.type === "ERROR") return undefined; // expired: list again
      const name = ev.object.metadata.name ?? "";
      if (ev.type === "DELETED") {
        if (name === request) throw new CliError(`request ${request} was deleted`);
        calls.delete(name);
      } else calls.set(name, ev.object);
      changed();
      if (name === request && isTerminal(ev.object)) return ev.object;
    }
    return undefined;
  } finally {
    ac.abort();
  }
}

/** Watches the request's calls until the root finishes, drawing one progress line. */
async function follow(ctx: Ctx, request: string, show: boolean): Promise<Call> {
  const calls = new Map<string, Call>();
  const progress = progressLine(request, calls, show);
  try {
    for (;;) {
      const resourceVersion = await listCalls(ctx, request, calls);
      progress.draw();
      const root = calls.get(request)!;
      if (isTerminal(root)) return root;
      const done = await watchCalls(ctx, request, resourceVersion, calls, () => progress.draw());
      if (done) return done;
    }
  } finally {
    progress.stop();
  }
}

/** Prints the output (stdout) or the failure (stderr); the exit code. */
async function printOutcome(ctx: Ctx, root: Call, apiOpts: ApiOpts): Promise<number> {
  const s = root.status ?? {};
  if (s.phase !== "Succeeded") {
    const e = s.error;
    process.stderr.write(
      `request ${root.metadata.name} ${s.phase?.toLowerCase() ?? "failed"}${e?.reason ? ` (${e.reason})` : ""}: ${e?.type ?? "Error"}: ${e?.message ?? ""}\n`,
    );
    if (e?.traceback) process.stderr.write(`${e.traceback.trimEnd()}\n`);
    return 1;
  }
  const value = await outputValue(ctx, root, apiOpts);
  if (value instanceof RawOutput) {
    // A File's bytes go out as they are (pipe them to a file); what they are goes to stderr.
    process.stdout.write(value.bytes);
    process.stderr.write(`(${value.contentType}, ${value.bytes.length} bytes)\n`);
    return 0;
  }
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  return 0;
}

/** An output that is bytes with a content type (a File), not JSON. */
class RawOutput {
  constructor(
    readonly contentType: string,
    readonly bytes: Buffer,
  ) {}
}

async function outputValue(ctx: Ctx, root: Call, apiOpts: ApiOpts): Promise<unknown> {
  const name = root.metadata.name ?? "";
  const viaApi = async () => {
    if (!apiOpts.url)
      throw new CliError(
        `the output of ${name} is in the operator's blob store: pass --api URL (or set TRELLIS_API_URL) to read it`,
      );
    const r = await api(
      apiOpts,
      "GET",
      `/v1/namespaces/${ctx.namespace}/applications/${root.spec.application}/requests/${name}/output`,
    ).catch((e: unknown) => {
      if (e instanceof CliError) throw e;
      throw new CliError(`cannot reach the HTTP API at ${apiOpts.url}: ${(e as Error).message}`);
    });
    if (!r.ok) throw await apiError(r, `output of ${name}`);
    const type = r.headers.get("content-type") ?? "";
    if (/^application\/json\b/.test(type)) return r.json();
    return new RawOutput(type, Buffer.from(await r.arrayBuffer()));
  };
  const hasBlob = (v: ValueRef | undefined): boolean =>
    !!v && (v.blob !== undefined || (v.list ?? []).some((i) => hasBlob(i as ValueRef)));
  if (hasBlob(root.status?.output)) return viaApi();
  return inlineJson(root.status?.output, name);
}

/** The JSON form of an output held inline (no blob): a pickle anywhere in it has none. */
function inlineJson(v: ValueRef | undefined, name: string, item = false): unknown {
  if (v?.pickle !== undefined)
    throw new CliError(
      `${item ? "an item of " : ""}the output of ${name} is a Python pickle (no JSON form): read it with the Python SDK`,
    );
  if (v?.raw !== undefined) {
    if (item) throw new CliError(`an item of the output of ${name} is raw bytes (a File): it has no JSON form`);
    return new RawOutput(v.raw.contentType, Buffer.from(v.raw.data, "base64"));
  }
  if (v?.list !== undefined) return v.list.map((i) => inlineJson(i as ValueRef, name, true));
  return v?.value ?? null;
}

export async function output(ctx: Ctx, request: string, apiOpts: ApiOpts): Promise<number> {
  await requireCrds(ctx);
  const root = await getCall(ctx, request);
  const phase = root.status?.phase ?? "Pending";
  if (!TERMINAL.includes(phase)) throw new CliError(`request ${request} is not finished (phase ${phase})`);
  return printOutcome(ctx, root, apiOpts);
}

export { requestCalls };
