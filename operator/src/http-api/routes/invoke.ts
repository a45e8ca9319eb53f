// POST /v1/namespaces/:namespace/applications/:application — creates a request (the root
// FunctionCall). No body → no arguments; JSON body → first positional argument; another content
// type → the first positional argument as raw bytes; multipart → several arguments (inputs.ts);
// Idempotency-Key → a deterministic name, so a retry returns the same request;
// Accept: text/event-stream → the request's progress and outcome as server-sent events.
// A key reused with other inputs is 422 (idempotency.ts); only allowlisted headers are forwarded.
// A File (a raw body, a file part) is streamed into the blob store as it arrives; an invoke that
// fails, is refused or answers an existing request deletes the blobs it wrote.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { ANNOTATION, type ValueRef, newRequest, requestName } from "../../../../protocol/index.js";
import { isAlreadyExists, isInvalid } from "../../kube/index.js";
import { InputBlobs } from "../input-blobs.js";
import { DEFAULT_BODY_LIMIT, DEFAULT_MAX_FILE_BYTES, type InputLimits, parseInputs, storeValue } from "../inputs.js";
import { findApplication } from "../manifest.js";
import { appParams, errorBody, invokeHeaders, invokeResponse } from "../schemas.js";
import { forwardedHeaders, headerFilter } from "../headers.js";
import { idempotencyMismatch, inputsHash } from "../idempotency.js";
import { streamRequest } from "../sse.js";
import { acquireStream } from "../streams.js";
import { codeLoadFailure } from "../views.js";
import type { ApplicationObj, CallObject, HttpApiDeps } from "../types.js";

/** Each argument inline when small, else in a blob under the request's prefix (a streamed File is one already). */
async function storeInputs(
  blobs: InputBlobs,
  inputs: Awaited<ReturnType<typeof parseInputs>>,
): Promise<{ args: unknown[]; kwargs: Record<string, unknown> }> {
  const args = await Promise.all(inputs.args.map((v) => storeValue(v, blobs.ref, blobs.put)));
  const kwargs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inputs.kwargs)) kwargs[k] = await storeValue(v, blobs.ref, blobs.put);
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
  blobs: InputBlobs,
  r: {
    namespace: string;
    application: string;
    name: string;
    fn: string;
    idem: string | undefined;
    headers: Record<string, string>;
  },
  inputs: Awaited<ReturnType<typeof parseInputs>>,
): Promise<{ call: CallObject; hash: string | undefined }> {
  const name = r.name;
  const { args, kwargs } = await storeInputs(blobs, inputs);
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

/**
 * Reads the inputs (a File into the blob store as it arrives), takes the stream slot when events
 * are asked for, and creates the root call. The blobs written go again when the invoke fails, is
 * refused, or answers an existing request.
 */
async function invoke(
  deps: HttpApiDeps,
  ctx: { limits: InputLimits; forwarded: ReturnType<typeof headerFilter> },
  req: FastifyRequest,
  reply: FastifyReply,
  appObj: ApplicationObj,
): Promise<FastifyReply> {
  const { namespace, application: asked } = req.params as { namespace: string; application: string };
  const application = appObj.metadata.name ?? asked;
  const idem = req.headers["idempotency-key"] as string | undefined;
  const name = requestName(namespace, application, idem);
  const blobs = new InputBlobs(deps.blobs, namespace, name, {
    maxFileBytes: ctx.limits.maxFileBytes,
    digest: idem !== undefined,
  });
  const discard = () =>
    blobs.discard((ref, err) => deps.log.warn("could not delete an unused input blob", { ref, err }));
  let made: Awaited<ReturnType<typeof create>>;
  // The stream slot before the request is created: a refused stream must not leave a request behind.
  let slot: (() => void) | undefined;
  const sse = String(req.headers.accept ?? "").includes("text/event-stream");
  try {
    const inputs = await parseInputs(bodySent(req.headers) ? req.body : undefined, {
      limits: ctx.limits,
      files: blobs.file,
    });
    slot = sse ? acquireStream(req, reply) : undefined;
    if (sse && !slot) {
      await discard();
      return reply;
    }
    const root = await rootCall(
      blobs,
      {
        namespace,
        application,
        name,
        fn: appObj.spec.entrypoint,
        idem,
        headers: forwardedHeaders(req.headers, ctx.forwarded),
      },
      inputs,
    );
    made = await create(deps, root.call, root.hash);
  } catch (e) {
    slot?.();
    await discard();
    throw e;
  }
  if ("refused" in made) {
    slot?.();
    await discard();
    return reply.code(made.refused.status).send({ code: made.refused.code, message: made.refused.message });
  }
  // An Idempotency-Key retry answers the existing request, which has inputs of its own.
  if (made.existed) await discard();
  const { created, existed } = made;
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
}

export function invokeRoutes(deps: HttpApiDeps) {
  const forwarded = headerFilter(deps.forwardHeaders);
  const limits = {
    bodyLimit: deps.bodyLimit ?? DEFAULT_BODY_LIMIT,
    maxFileBytes: deps.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
  };
  return async (app: FastifyInstance) => {
    app.post(
      "/v1/namespaces/:namespace/applications/:application",
      {
        schema: {
          summary: "Invoke an application (creates a request)",
          description:
            "No body: no arguments. application/json: the body is the first positional argument. Another content type: the body is the first positional argument as raw bytes (a File), streamed into the blob store, at most the file limit (TRELLIS_HTTP_MAX_FILE_BYTES, 413 past it). multipart/form-data: parts `0`, `1`, … positional and other parts keyword arguments, each JSON or raw by its content type (file parts are streamed Files under the file limit each; fields and JSON parts together under the body limit); or part `args` (JSON list) and part `kwargs` (JSON object). Pickled values are refused (415). 424 when the application's code failed to load.",
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
            "*/*": {
              schema: {
                type: "string",
                format: "binary",
                description: "One raw positional argument (a File), streamed; at most the file limit.",
              },
            },
          },
          response: {
            200: invokeResponse,
            201: invokeResponse,
            400: errorBody,
            404: errorBody,
            413: errorBody,
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
        return invoke(deps, { limits, forwarded }, req, reply, appObj);
      },
    );
  };
}
