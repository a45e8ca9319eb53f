// The JSON routes the web view needs beyond Tensorlake's: an application's status (conditions and
// per-function containers), a request's calls as a graph, and that graph live over SSE. Read-only;
// RBAC decides as for the other v1 routes.
import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import { findApplication, requestMetadata } from "../manifest.js";
import { callAsShown, isShard, objectName } from "../../../../protocol/index.js";
import { appParams, errorBody, requestParams, requestView } from "../schemas.js";
import { openEventStream } from "../event-stream.js";
import { applicationNotFound, requestLookup } from "../request-lookup.js";
import type { CallObject, HttpApiDeps } from "../types.js";
import { finished } from "../views.js";
import { cachedCall, requestObjects, shardReader } from "../shards.js";
import { requestGraph } from "./graph.js";

type Params = { namespace: string; application: string; request: string };
type CallParams = Params & { call: string };

const condition = z.object({
  type: z.string(),
  status: z.string(),
  reason: z.string().nullable(),
  message: z.string().nullable(),
});
export const applicationStatus = z.object({
  name: z.string(),
  ready: z.boolean(),
  generation: z.number().int().nullable(),
  observed_generation: z.number().int().nullable(),
  conditions: z.array(condition),
  functions: z.array(
    z.object({ name: z.string(), ready: z.number(), busy: z.number(), queued: z.number(), running: z.number() }),
  ),
  ready_containers: z.number().int(),
});

const callNode = z.object({
  name: z.string(),
  function: z.string(),
  kind: z.enum(["call", "map", "reduce"]),
  parent: z.string().nullable(),
  sequence: z.number().int().nullable(),
  phase: z.string(),
  attempts: z.number().int(),
  disruptions: z.number().int(),
  infrastructure_failures: z.number().int(),
  pod: z.string().nullable(),
  created_at: z.number().nullable(),
  started_at: z.number().nullable(),
  finished_at: z.number().nullable(),
  tail_call: z.string().nullable(),
  inputs: z.array(z.string()),
  progress: z.object({ current: z.number(), total: z.number(), message: z.string().optional() }).nullable(),
  error: z
    .object({
      type: z.string(),
      message: z.string(),
      traceback: z.string().nullable(),
      reason: z.string().nullable(),
      cause: z.string().nullable(),
    })
    .nullable(),
  items: z.object({ total: z.number().int(), phases: z.record(z.string(), z.number().int()) }).nullable(),
});
export const requestGraphBody = z.object({
  request: requestView,
  calls: z.array(callNode),
  hidden: z.number().int().meta({ description: "Calls not listed: folded map/reduce items, and past 300 nodes." }),
});

export const callParams = requestParams.extend({
  call: objectName.meta({ description: "A FunctionCall of the request (the root or any call under it)." }),
});
export const logsQuery = z.object({
  tailLines: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000)
    .default(500)
    .meta({ description: "Last lines of the log returned." }),
});
/** Most bytes of log one answer carries (the last ones). */
export const LOG_LIMIT_BYTES = 256 * 1024;
export const logsBody = z.object({
  call: z.string(),
  pod: z.string(),
  container: z.literal("worker"),
  tail_lines: z.number().int(),
  limit_bytes: z.number().int(),
  text: z.string(),
});

export const itemsQuery = z.object({
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0).meta({ description: "Items skipped first." }),
  limit: z.coerce.number().int().min(1).max(200).default(50).meta({ description: "Most items returned." }),
});
const itemRowSchema = z.object({
  index: z.number().int().meta({ description: "The item's position in the map/reduce (its sequence)." }),
  name: z.string(),
  phase: z.string(),
  attempts: z.number().int(),
  pod: z.string().nullable(),
  started_at: z.number().nullable(),
  finished_at: z.number().nullable(),
  error: z.object({ type: z.string(), message: z.string() }).nullable(),
});
export const itemsBody = z.object({
  call: z.string(),
  total: z.number().int(),
  offset: z.number().int(),
  limit: z.number().int(),
  items: z.array(itemRowSchema),
});

/** Least time between two graph events of one stream: a 1,000-item map settles in one. */
const GRAPH_EVENT_MS = 250;

export function uiRoutes(deps: HttpApiDeps) {
  const { findRoot, notFound } = requestLookup(deps);
  /** The request's cached objects, shards among them (not expanded). */
  const objectsOf = (p: Params): CallObject[] => requestObjects(deps, p.namespace, p.request);
  const graph = (p: Params, root: CallObject) => {
    // Each shard shown as its items (its decoded items kept while it is unchanged).
    const calls = shardReader.expand(objectsOf(p));
    if (!calls.some((c) => c.metadata.name === p.request)) calls.push(root);
    return { request: requestMetadata(deps, root), ...requestGraph(calls) };
  };

  /**
   * The call `p.call` when it is of the request `p.request` (the root included), else undefined:
   * an object, or a map item held by one of the request's shards; a shard is not a call.
   */
  const findCall = async (p: CallParams): Promise<CallObject | undefined> => {
    if (p.call === p.request) return findRoot(p);
    if (!(await findRoot(p))) return undefined;
    const c =
      cachedCall(deps, p.namespace, p.request, p.call) ??
      (deps.calls.get(`${p.namespace}/${p.call}`) ? undefined : await deps.getCall(p.namespace, p.call));
    return c && !isShard(c) && c.spec.request === p.request ? callAsShown(c) : undefined;
  };
  const callNotFound = (reply: FastifyReply, p: CallParams) =>
    reply.code(404).send({
      code: "not_found",
      message: `call ${p.call} of request ${p.request} of application ${p.application} not found in namespace ${p.namespace}`,
    });

  return async (app: FastifyInstance) => {
    app.get(
      "/v1/namespaces/:namespace/applications/:application/status",
      {
        schema: {
          summary: "An application's status: conditions and containers per function (the web view)",
          tags: ["applications"],
          params: appParams,
          response: { 200: applicationStatus, 404: errorBody },
        },
        config: { access: { verb: "get", resource: "applications" } },
      },
      async (req, reply) => {
        const { namespace, application } = req.params as { namespace: string; application: string };
        const a = findApplication(deps, namespace, application);
        if (!a) return applicationNotFound(reply, namespace, application);
        const s = a.status ?? {};
        const conditions = (s.conditions ?? []).map((c) => ({
          type: c.type,
          status: c.status,
          reason: c.reason ?? null,
          message: c.message ?? null,
        }));
        return {
          name: a.metadata.name ?? application,
          ready: conditions.some((c) => c.type === "Ready" && c.status === "True"),
          generation: a.metadata.generation ?? null,
          observed_generation: s.observedGeneration ?? null,
          conditions,
          functions: (s.functions ?? []).map((f) => ({
            name: f.name,
            ready: f.ready ?? 0,
            busy: f.busy ?? 0,
            queued: f.queued ?? 0,
            running: f.running ?? 0,
          })),
          ready_containers: s.readyContainers ?? 0,
        };
      },
    );

    app.get(
      "/v1/namespaces/:namespace/applications/:application/requests/:request/calls",
      {
        schema: {
          summary: "A request's calls as a graph (the web view): map/reduce items folded into counts",
          tags: ["requests"],
          params: requestParams,
          response: { 200: requestGraphBody, 404: errorBody },
        },
        config: { access: { verb: "list", resource: "functioncalls" } },
      },
      async (req, reply) => {
        const p = req.params as Params;
        const root = await findRoot(p);
        return root ? graph(p, root) : notFound(reply, p);
      },
    );

    app.get(
      "/v1/namespaces/:namespace/applications/:application/requests/:request/calls/events",
      {
        schema: {
          summary: "Server-sent events: `graph` (as …/calls) on every change, `completed` after the request finished",
          tags: ["requests"],
          params: requestParams,
          response: { 404: errorBody },
        },
        config: { access: { verb: "list", resource: "functioncalls" } },
      },
      async (req, reply) => {
        const p = req.params as Params;
        const root = await findRoot(p);
        if (!root) return notFound(reply, p);
        streamGraph(reply, deps, p, root, (r) => graph(p, r));
        return reply;
      },
    );

    app.get(
      "/v1/namespaces/:namespace/applications/:application/requests/:request/calls/:call/logs",
      {
        schema: {
          summary: "The last lines of the worker container's log of the pod that ran a call (the web view)",
          tags: ["requests"],
          params: callParams,
          querystring: logsQuery,
          response: { 200: logsBody, 404: errorBody, 409: errorBody, 502: errorBody, 503: errorBody },
        },
        config: { access: { verb: "get", resource: "pods/log" } },
      },
      async (req, reply) => {
        const p = req.params as CallParams;
        const { tailLines } = req.query as z.infer<typeof logsQuery>;
        const c = await findCall(p);
        if (!c) return callNotFound(reply, p);
        const pod = c.status?.pod;
        if (!pod)
          return reply.code(409).send({
            code: "not_started",
            message: `call ${p.call} has not run on a pod yet (phase ${c.status?.phase ?? "Pending"}): no logs`,
          });
        if (!deps.podLog)
          return reply.code(503).send({ code: "unavailable", message: "this server cannot read pod logs" });
        let log;
        try {
          log = await deps.podLog(p.namespace, pod, { tailLines, limitBytes: LOG_LIMIT_BYTES });
        } catch (e) {
          deps.log.warn("web view: a pod's log could not be read", { pod, err: e });
          return reply.code(502).send({
            code: "log_unavailable",
            message: `cannot read the log of pod ${pod} that ran call ${p.call}: ${(e as Error).message}`.slice(
              0,
              1000,
            ),
          });
        }
        if ("gone" in log)
          return reply.code(404).send({
            code: "pod_gone",
            message: `pod ${pod} that ran call ${p.call} is gone (pods scale to zero when idle)`,
          });
        if ("waiting" in log)
          return reply.code(409).send({
            code: "not_started",
            message:
              `the worker container of pod ${pod} has not started yet (or its start is not reported yet); try again: ${log.waiting}`.slice(
                0,
                1000,
              ),
          });
        const text = log.text;
        return {
          call: p.call,
          pod,
          container: "worker" as const,
          tail_lines: tailLines,
          limit_bytes: LOG_LIMIT_BYTES,
          // The API server cuts at limitBytes; a fake or a misbehaving one is cut here too.
          text: text.length > LOG_LIMIT_BYTES ? text.slice(-LOG_LIMIT_BYTES) : text,
        };
      },
    );

    app.get(
      "/v1/namespaces/:namespace/applications/:application/requests/:request/calls/:call/items",
      {
        schema: {
          summary: "A map/reduce call's items, one page (the web view's way into a folded map)",
          tags: ["requests"],
          params: callParams,
          querystring: itemsQuery,
          response: { 200: itemsBody, 404: errorBody },
        },
        config: { access: { verb: "list", resource: "functioncalls" } },
      },
      async (req, reply) => {
        const p = req.params as CallParams;
        const { offset, limit } = req.query as z.infer<typeof itemsQuery>;
        const c = await findCall(p);
        if (!c) return callNotFound(reply, p);
        // Items held by shards are decoded only where the page falls.
        const { total, page } = shardReader.children(objectsOf(p), p.call, offset, limit);
        return { call: p.call, total, offset, limit, items: page.map(itemRow) };
      },
    );
  };
}

const ms = (t: string | undefined): number | null => (t ? new Date(t).getTime() : null);
function itemRow(c: CallObject) {
  const st = c.status ?? {};
  return {
    index: c.spec.sequence ?? 0,
    name: c.metadata.name ?? "",
    phase: st.phase ?? "Pending",
    attempts: st.attempts ?? 0,
    pod: st.pod ?? null,
    started_at: ms(st.startTime),
    finished_at: ms(st.completionTime),
    error: st.error ? { type: st.error.type, message: st.error.message } : null,
  };
}

function streamGraph(
  reply: FastifyReply,
  deps: HttpApiDeps,
  p: Params,
  initial: CallObject,
  graphOf: (root: CallObject) => unknown,
): void {
  const key = `${p.namespace}/${p.request}`;
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe = () => {};
  const stream = openEventStream(reply, deps, {
    onClose: () => {
      clearTimeout(timer);
      unsubscribe();
    },
    timeoutMessage: () => "the stream reached its maximum duration; reconnect to keep following",
  });
  if (!stream) return; // answered 429
  let last = "";
  const emit = () => {
    timer = undefined;
    if (stream.closed) return;
    const root = deps.calls.get(key) ?? initial;
    const text = JSON.stringify(graphOf(root));
    if (text !== last) stream.sendJson("graph", text);
    last = text;
    if (finished(root)) {
      stream.send("completed", requestMetadata(deps, root));
      stream.close();
    }
  };
  const changed = () => {
    if (!stream.closed && !timer) timer = setTimeout(emit, GRAPH_EVENT_MS);
  };
  unsubscribe = deps.watchRequest ? deps.watchRequest(key, changed) : deps.watchCall(key, changed);
  emit();
}
