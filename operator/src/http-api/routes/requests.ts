// The requests of an application: list, status, output, progress (SSE) and delete.
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { isNotFound } from "../../kube/index.js";
import { appParams, errorBody, listQuery, requestList, requestParams, requestView } from "../schemas.js";
import { requestLookup } from "../request-lookup.js";
import { streamRequest } from "../sse.js";
import type { CallObject, HttpApiDeps } from "../types.js";
import { requestMetadata } from "../manifest.js";
import { decodeOutput, finished, isRoot, outputRefusal } from "../views.js";

const PICKLE = "application/python-pickle";
type Params = { namespace: string; application: string; request: string };

/** Whether an Accept header admits `type` (no header admits anything; q=0 refuses). */
export function accepts(header: string | undefined, type: string): boolean {
  if (!header?.trim()) return true;
  const [major] = type.split("/");
  let best: { rank: number; q: number } | undefined;
  for (const item of header.split(",")) {
    const [range = "", ...params] = item.split(";").map((x) => x.trim().toLowerCase());
    const rank = range === type ? 3 : range === `${major}/*` ? 2 : range === "*/*" ? 1 : 0;
    const qp = params.find((x) => x.startsWith("q="));
    const q = qp ? Number(qp.slice(2)) : 1;
    if (rank && (!best || rank > best.rank)) best = { rank, q: Number.isNaN(q) ? 0 : q };
  }
  return !!best && best.q > 0;
}

export function requestRoutes(deps: HttpApiDeps) {
  const view = (c: CallObject) => requestMetadata(deps, c);
  const { appName, findRoot: find, notFound } = requestLookup(deps);
  // A File output held in a blob is streamed out, never read whole.
  const blobs = {
    read: (ref: string) => deps.blobs.read(ref),
    open: async (ref: string) => (await deps.blobs.get(ref))?.stream,
  };

  return async (app: FastifyInstance) => {
    app.get(
      "/v1/namespaces/:namespace/applications/:application/requests",
      {
        schema: {
          summary: "List an application's requests, newest first",
          tags: ["requests"],
          params: appParams,
          querystring: listQuery,
          response: { 200: requestList },
        },
        config: { access: { verb: "list", resource: "functioncalls" } },
      },
      async (req) => {
        const p = req.params as Params;
        const application = appName(p);
        const q = req.query as z.infer<typeof listQuery>;
        const { limit, status, offset } = q;
        const time = (c: CallObject) => new Date(c.metadata.creationTimestamp ?? 0).getTime();
        const inWindow = (c: CallObject) =>
          (q.created_after === undefined || time(c) >= q.created_after) &&
          (q.created_before === undefined || time(c) < q.created_before);
        const roots = deps.calls
          .list(p.namespace)
          .filter((c) => isRoot(c) && c.spec.application === application && inWindow(c))
          .sort((a, b) => time(b) - time(a) || (b.metadata.name ?? "").localeCompare(a.metadata.name ?? ""));
        if (!status) return { requests: roots.slice(offset, offset + limit).map(view) };
        const views = roots.map(view).filter((v) => v.status === status);
        return { requests: views.slice(offset, offset + limit) };
      },
    );

    app.get(
      "/v1/namespaces/:namespace/applications/:application/requests/:request",
      {
        schema: {
          summary: "A request's status and outcome",
          tags: ["requests"],
          params: requestParams,
          response: { 200: requestView, 404: errorBody },
        },
        config: { access: { verb: "get", resource: "functioncalls" } },
      },
      async (req, reply) => {
        const p = req.params as Params;
        const c = await find(p);
        return c ? view(c) : notFound(reply, p);
      },
    );

    app.delete(
      "/v1/namespaces/:namespace/applications/:application/requests/:request",
      {
        schema: {
          summary: "Delete a request: its calls are cancelled and its graph is garbage-collected",
          tags: ["requests"],
          params: requestParams,
          response: { 200: z.object({ id: z.string(), deleted: z.boolean() }), 404: errorBody },
        },
        config: { access: { verb: "delete", resource: "functioncalls" } },
      },
      async (req, reply) => {
        const p = req.params as Params;
        if (!(await find(p))) return notFound(reply, p);
        try {
          await deps.deleteCall(p.namespace, p.request);
        } catch (e) {
          if (isNotFound(e)) return notFound(reply, p);
          throw e;
        }
        return { id: p.request, deleted: true };
      },
    );

    app.get(
      "/v1/namespaces/:namespace/applications/:application/requests/:request/output",
      {
        schema: {
          summary:
            "The request's output: JSON, raw bytes under their own content type (a File, streamed from the blob store), or a Python pickle when Accept admits application/python-pickle",
          tags: ["requests"],
          params: requestParams,
          response: { 404: errorBody, 406: errorBody, 409: errorBody },
        },
        config: { access: { verb: "get", resource: "functioncalls" } },
      },
      async (req, reply) => {
        const p = req.params as Params;
        const c = await find(p);
        if (!c) return notFound(reply, p);
        const v = view(c);
        if (!finished(c))
          return reply.code(409).send({ code: "not_finished", message: `request ${p.request} is ${v.status}` });
        if (v.status !== "success") {
          const why = v.request_error?.message ?? v.error?.message ?? v.failure_reason ?? "failed";
          return reply
            .code(409)
            .send({ code: "request_failed", message: `request ${p.request} failed (${v.failure_reason}): ${why}` });
        }
        let out;
        try {
          out = await decodeOutput(c.status?.output, blobs, { namespace: p.namespace, request: p.request });
        } catch (e) {
          const refused = outputRefusal(e, p.request);
          if (refused) return reply.code(refused.status).send(refused.body);
          throw e;
        }
        if (out.kind === "json") return reply.type("application/json; charset=utf-8").send(JSON.stringify(out.value));
        if (out.kind === "raw") return reply.header("content-type", out.contentType).send(out.bytes);
        if (accepts(req.headers.accept, PICKLE)) return reply.header("content-type", PICKLE).send(out.bytes);
        return reply.code(406).send({
          code: "not_acceptable",
          message: `the output of request ${p.request} is a Python pickle (not JSON): a Python client may ask for it with Accept: ${PICKLE}`,
        });
      },
    );

    app.get(
      "/v1/namespaces/:namespace/applications/:application/requests/:request/progress",
      {
        schema: {
          summary: "Server-sent events: status and progress updates, then the outcome",
          tags: ["requests"],
          params: requestParams,
          response: { 404: errorBody },
        },
        config: { access: { verb: "get", resource: "functioncalls" } },
      },
      async (req, reply) => {
        const p = req.params as Params;
        const c = await find(p);
        if (!c) return notFound(reply, p);
        streamRequest(reply, deps, `${p.namespace}/${p.request}`, c);
        return reply;
      },
    );
  };
}
