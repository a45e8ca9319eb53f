// POST /v1/namespaces/:namespace/applications/:application — creates a request (the root
// FunctionCall). No body → no arguments; JSON body → first positional argument; another content
// type → the first positional argument as raw bytes; multipart → several arguments (inputs.ts);
// Idempotency-Key → a deterministic name, so a retry returns the same request;
// Accept: text/event-stream → the request's progress and outcome as server-sent events.
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { type ValueRef, newRequest, requestName } from "../../../../protocol/index.js";
import { isAlreadyExists, isInvalid } from "../../kube/index.js";
import { newBlobRef } from "../../blobs/index.js";
import { parseInputs, storeValue } from "../inputs.js";
import { findApplication } from "../manifest.js";
import { appParams, errorBody, invokeHeaders, invokeResponse } from "../schemas.js";
import { streamRequest } from "../sse.js";
import { codeLoadFailure } from "../views.js";
import type { CallObject, HttpApiDeps } from "../types.js";

/** Request headers worth giving to the functions (request context); never credentials. */
const FORWARDED = (h: string) => !["authorization", "cookie", "proxy-authorization", "content-length"].includes(h);

/** Each argument inline when small, else in a blob under the request's prefix. */
async function storeInputs(
  deps: HttpApiDeps,
  namespace: string,
  name: string,
  inputs: Awaited<ReturnType<typeof parseInputs>>,
): Promise<{ args: unknown[]; kwargs: Record<string, unknown> }> {
  const ref = () => newBlobRef(namespace, name);
  const put = (r: string, d: Uint8Array) => deps.blobs.put(r, d);
  const args = await Promise.all(inputs.args.map((v) => storeValue(v, ref, put)));
  const kwargs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inputs.kwargs)) kwargs[k] = await storeValue(v, ref, put);
  return { args, kwargs };
}

/** At most 64 headers of at most 8 KiB each: the request context is stored in the FunctionCall. */
function forwardedHeaders(reqHeaders: Record<string, unknown>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(reqHeaders))
    if (typeof v === "string" && FORWARDED(k) && Object.keys(headers).length < 64) headers[k] = v.slice(0, 8192);
  return headers;
}

/** No body at all is no arguments (fastify leaves the body null then, as for a JSON null). */
const bodySent = (h: Record<string, unknown>): boolean =>
  Number(h["content-length"] ?? 0) > 0 || h["transfer-encoding"] !== undefined;

/** Creates the root call; with an Idempotency-Key, an existing one is the same request. */
async function create(
  deps: HttpApiDeps,
  call: CallObject,
  idempotent: boolean,
): Promise<{ created: CallObject | undefined; existed: boolean } | { invalid: string }> {
  const { namespace = "", name = "" } = call.metadata;
  try {
    return { created: await deps.createCall(call), existed: false };
  } catch (e) {
    if (isAlreadyExists(e) && idempotent)
      return {
        created: deps.calls.get(`${namespace}/${name}`) ?? (await deps.getCall(namespace, name)),
        existed: true,
      };
    if (isInvalid(e)) return { invalid: (e as Error).message };
    throw e;
  }
}

export function invokeRoutes(deps: HttpApiDeps) {
  return async (app: FastifyInstance) => {
    app.post(
      "/v1/namespaces/:namespace/applications/:application",
      {
        schema: {
          summary: "Invoke an application (creates a request)",
          description:
            "No body: no arguments. application/json: the body is the first positional argument. Another content type: the body is the first positional argument as raw bytes. multipart/form-data: parts `0`, `1`, … positional and other parts keyword arguments, each JSON or raw by its content type; or part `args` (JSON list) and part `kwargs` (JSON object). Pickled values are refused (415). 424 when the application's code failed to load.",
          tags: ["requests"],
          params: appParams,
          headers: invokeHeaders,
          body: z.unknown().optional(),
          bodyContent: {
            "application/json": { schema: { description: "The first positional argument (any JSON value)." } },
            "multipart/form-data": {
              schema: {
                type: "object",
                properties: { args: { type: "string", description: "JSON list" }, kwargs: { type: "string" } },
              },
            },
            "*/*": { schema: { type: "string", format: "binary", description: "One raw positional argument." } },
          },
          response: {
            200: invokeResponse,
            201: invokeResponse,
            400: errorBody,
            404: errorBody,
            415: errorBody,
            424: errorBody,
          },
        },
        config: { access: { verb: "create", resource: "functioncalls" } },
      },
      async (req, reply) => {
        const { namespace, application: asked } = req.params as { namespace: string; application: string };
        const appObj = findApplication(deps, namespace, asked);
        if (!appObj)
          return reply
            .code(404)
            .send({ code: "not_found", message: `application ${asked} not found in namespace ${namespace}` });
        const loadError = codeLoadFailure(appObj);
        if (loadError) return reply.code(424).send({ code: "code_load_failed", message: loadError });
        const application = appObj.metadata.name ?? asked;
        const inputs = await parseInputs(bodySent(req.headers) ? req.body : undefined);
        const idem = req.headers["idempotency-key"] as string | undefined;
        const name = requestName(namespace, application, idem);
        const { args, kwargs } = await storeInputs(deps, namespace, name, inputs);
        const headers = forwardedHeaders(req.headers);
        const call = newRequest({
          namespace,
          application,
          function: appObj.spec.entrypoint,
          name,
          args: args as ValueRef[],
          kwargs: kwargs as Record<string, ValueRef>,
          headers,
          ...(idem ? { idempotencyKey: idem } : {}),
        }) as CallObject;
        const made = await create(deps, call, !!idem);
        if ("invalid" in made) return reply.code(400).send({ code: "invalid", message: made.invalid });
        const { created, existed } = made;
        req.log.info({ request: name, application, existed }, "request created");
        if (String(req.headers.accept ?? "").includes("text/event-stream")) {
          streamRequest(reply, deps, `${namespace}/${name}`, created, [
            { event: "request_created", data: { request_id: name } },
          ]);
          return reply;
        }
        return reply.code(existed ? 200 : 201).send({ request_id: name });
      },
    );
  };
}
