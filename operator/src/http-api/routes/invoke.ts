// POST /v1/namespaces/:namespace/applications/:application — creates a request (the root
// FunctionCall). No body → no arguments; JSON body → first positional argument; another content
// type → the first positional argument as raw bytes; multipart → several arguments (inputs.ts);
// Idempotency-Key → a deterministic name, so a retry returns the same request;
// Accept: text/event-stream → the request's progress and outcome as server-sent events.
// A key reused with other inputs is 422 (idempotency.ts); only allowlisted headers are forwarded.
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { ANNOTATION, type ValueRef, newRequest, requestName } from "../../../../protocol/index.js";
import { isAlreadyExists, isInvalid } from "../../kube/index.js";
import { newBlobRef } from "../../blobs/index.js";
import { parseInputs, storeValue } from "../inputs.js";
import { findApplication } from "../manifest.js";
import { appParams, errorBody, invokeHeaders, invokeResponse } from "../schemas.js";
import { forwardedHeaders, headerFilter } from "../headers.js";
import { idempotencyMismatch, inputsHash } from "../idempotency.js";
import { streamRequest } from "../sse.js";
import { acquireStream } from "../streams.js";
import { codeLoadFailure } from "../views.js";
import type { CallObject, HttpApiDeps } from "../types.js";

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

/** No body at all is no arguments (fastify leaves the body null then, as for a JSON null). */
const bodySent = (h: Record<string, unknown>): boolean =>
  Number(h["content-length"] ?? 0) > 0 || h["transfer-encoding"] !== undefined;

type Refusal = { status: 400 | 422; code: string; message: string };

/**
 * Creates the root call; with an Idempotency-Key, an existing one is the same request when it was
 * made with the same inputs (`hash`), else the key is refused.
 */
async function create(
  deps: HttpApiDeps,
  call: CallObject,
  hash: string | undefined,
): Promise<{ created: CallObject | undefined; existed: boolean } | { refused: Refusal }> {
  const { namespace = "", name = "" } = call.metadata;
  try {
    return { created: await deps.createCall(call), existed: false };
  } catch (e) {
    if (isAlreadyExists(e) && hash) {
      const created = deps.calls.get(`${namespace}/${name}`) ?? (await deps.getCall(namespace, name));
      const reused = idempotencyMismatch(created, hash);
      if (reused) return { refused: { status: 422, code: "idempotency_key_reused", message: reused } };
      return { created, existed: true };
    }
    if (isInvalid(e)) return { refused: { status: 400, code: "invalid", message: (e as Error).message } };
    throw e;
  }
}

/** The root call of a request: its name, inputs, allowlisted headers and idempotency annotations. */
async function rootCall(
  deps: HttpApiDeps,
  r: { namespace: string; application: string; fn: string; idem: string | undefined; headers: Record<string, string> },
  inputs: Awaited<ReturnType<typeof parseInputs>>,
): Promise<{ call: CallObject; hash: string | undefined }> {
  const name = requestName(r.namespace, r.application, r.idem);
  const { args, kwargs } = await storeInputs(deps, r.namespace, name, inputs);
  const call = newRequest({
    namespace: r.namespace,
    application: r.application,
    function: r.fn,
    name,
    args: args as ValueRef[],
    kwargs: kwargs as Record<string, ValueRef>,
    headers: r.headers,
    ...(r.idem ? { idempotencyKey: r.idem } : {}),
  }) as CallObject;
  const hash = r.idem ? inputsHash(r.fn, inputs) : undefined;
  if (hash) call.metadata.annotations = { ...call.metadata.annotations, [ANNOTATION.idempotencyBody]: hash };
  return { call, hash };
}

export function invokeRoutes(deps: HttpApiDeps) {
  const forwarded = headerFilter(deps.forwardHeaders);
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
            422: errorBody,
            424: errorBody,
            429: errorBody,
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
        // The stream slot first: a refused stream must not leave a request behind.
        const sse = String(req.headers.accept ?? "").includes("text/event-stream");
        const slot = sse ? acquireStream(req, reply) : undefined;
        if (sse && !slot) return reply;
        const { call, hash } = await rootCall(
          deps,
          {
            namespace,
            application,
            fn: appObj.spec.entrypoint,
            idem: req.headers["idempotency-key"] as string | undefined,
            headers: forwardedHeaders(req.headers, forwarded),
          },
          inputs,
        );
        const made = await create(deps, call, hash).catch((e: unknown) => {
          slot?.();
          throw e;
        });
        if ("refused" in made) {
          slot?.();
          return reply.code(made.refused.status).send({ code: made.refused.code, message: made.refused.message });
        }
        const { created, existed } = made;
        const name = call.metadata.name!;
        req.log.info({ request: name, application, existed }, "request created");
        if (slot) {
          streamRequest(
            reply,
            deps,
            `${namespace}/${name}`,
            created,
            [{ event: "request_created", data: { request_id: name } }],
            slot,
          );
          return reply;
        }
        return reply.code(existed ? 200 : 201).send({ request_id: name });
      },
    );
  };
}
