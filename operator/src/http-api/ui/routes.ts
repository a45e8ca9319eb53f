// The JSON routes the web view needs beyond Tensorlake's: an application's status (conditions and
// per-function containers), a request's calls as a graph, and that graph live over SSE. Read-only;
// RBAC decides as for the other v1 routes.
import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import { findApplication, requestMetadata } from "../manifest.js";
import { appParams, errorBody, requestParams, requestView } from "../schemas.js";
import { acquireStream } from "../streams.js";
import type { CallObject, HttpApiDeps } from "../types.js";
import { finished, isRoot } from "../views.js";
import { requestGraph } from "./graph.js";

type Params = { namespace: string; application: string; request: string };

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

/** Least time between two graph events of one stream: a 1,000-item map settles in one. */
const GRAPH_EVENT_MS = 250;

export function uiRoutes(deps: HttpApiDeps) {
  const appName = (p: { namespace: string; application: string }) =>
    findApplication(deps, p.namespace, p.application)?.metadata.name ?? p.application;
  const findRoot = async (p: Params): Promise<CallObject | undefined> => {
    const c = deps.calls.get(`${p.namespace}/${p.request}`) ?? (await deps.getCall(p.namespace, p.request));
    return c && isRoot(c) && c.spec.application === appName(p) ? c : undefined;
  };
  const callsOf = (p: Params): CallObject[] => {
    const key = `${p.namespace}/${p.request}`;
    const indexed = deps.calls.byIndex("byRequest", key);
    if (indexed.length) return indexed;
    return deps.calls.list(p.namespace).filter((c) => c.metadata.name === p.request || c.spec.request === p.request);
  };
  const graph = (p: Params, root: CallObject) => {
    const calls = callsOf(p);
    if (!calls.some((c) => c.metadata.name === p.request)) calls.push(root);
    return { request: requestMetadata(deps, root), ...requestGraph(calls) };
  };
  const notFound = (reply: FastifyReply, p: Params) =>
    reply.code(404).send({
      code: "not_found",
      message: `request ${p.request} of application ${p.application} not found in namespace ${p.namespace}`,
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
        if (!a)
          return reply
            .code(404)
            .send({ code: "not_found", message: `application ${application} not found in namespace ${namespace}` });
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
  };
}

function streamGraph(
  reply: FastifyReply,
  deps: HttpApiDeps,
  p: Params,
  initial: CallObject,
  graphOf: (root: CallObject) => unknown,
): void {
  const release = acquireStream(reply.request, reply);
  if (!release) return; // answered 429
  const { maxDurationMs } = reply.server.sseStreams.limits;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    connection: "keep-alive",
    "x-accel-buffering": "no",
  });
  const key = `${p.namespace}/${p.request}`;
  const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  let done = false;
  let last = "";
  let timer: NodeJS.Timeout | undefined;
  const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), deps.sseKeepAliveMs ?? 15_000);
  const expire = setTimeout(() => {
    send("stream_timeout", { message: "the stream reached its maximum duration; reconnect to keep following" });
    close();
  }, maxDurationMs);
  const close = () => {
    if (done) return;
    done = true;
    clearInterval(keepAlive);
    clearTimeout(expire);
    clearTimeout(timer);
    unsubscribe();
    release();
    res.end();
  };
  const emit = () => {
    timer = undefined;
    if (done) return;
    const root = deps.calls.get(key) ?? initial;
    const g = graphOf(root);
    const text = JSON.stringify(g);
    if (text !== last) res.write(`event: graph\ndata: ${text}\n\n`);
    last = text;
    if (finished(root)) {
      send("completed", requestMetadata(deps, root));
      close();
    }
  };
  const changed = () => {
    if (!done && !timer) timer = setTimeout(emit, GRAPH_EVENT_MS);
  };
  const unsubscribe = deps.watchRequest ? deps.watchRequest(key, changed) : deps.watchCall(key, changed);
  res.on("close", close);
  emit();
}
