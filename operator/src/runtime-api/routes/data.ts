// Request state (GET/PUT /requests/:request/state/:key) and blobs (PUT /blobs, GET /blobs/<ref>),
// both in the blob store under "<namespace>/<request>/", so they go with the request.
import type { FastifyPluginAsync } from "fastify";
import type { Readable } from "node:stream";
import { z } from "zod";
import { objectName, STATE_KEY, stateValue } from "../../../../protocol/index.js";
import { requestOf } from "../../engine/calls.js";
import type { EngineCore } from "../../engine/engine.js";
import type { PodIdentity } from "../../engine/pods.js";
import { jsonBytes } from "../../engine/values.js";
import { BlobTooLargeError, checkRef, newBlobRef } from "../blobstore.js";
import { ApiError, errors } from "../errors.js";
import { currentAttempt } from "../reports.js";
import { type RuntimeApiDeps, parse, podOf } from "../server.js";

/** Whether the pod runs a call of `request` now (reads are limited to the pod's own requests). */
export function podRunsRequest(core: EngineCore, id: PodIdentity, request: string): boolean {
  return core.dispatcher.pods.runningOn(id.namespace, id.pod).some((n) => {
    const c = core.graph.get(id.namespace, n);
    return c !== undefined && requestOf(c) === request;
  });
}

const stateParams = z.object({
  request: objectName,
  key: z.string().regex(STATE_KEY, { message: "must be 1-253 letters, digits, '.', '_' or '-'" }),
});

export const dataRoutes: FastifyPluginAsync<{ deps: RuntimeApiDeps }> = async (app, { deps }) => {
  const { core } = deps;
  const stateRef = (ns: string, request: string, key: string) => `${ns}/${request}/state/${key}`;

  app.get("/requests/:request/state/:key", async (req) => {
    const p = parse(stateParams, req.params, "path");
    const id = podOf(req);
    if (!podRunsRequest(core, id, p.request)) throw errors.notInRequest("path.request", p.request, id.pod);
    const bytes = await core.blobs.read(stateRef(id.namespace, p.request, p.key));
    return bytes ? (JSON.parse(bytes.toString("utf8")) as unknown) : {};
  });

  app.put("/requests/:request/state/:key", async (req) => {
    const p = parse(stateParams, req.params, "path");
    const body = parse(stateValue, req.body);
    const id = podOf(req);
    if (!podRunsRequest(core, id, p.request)) throw errors.notInRequest("path.request", p.request, id.pod);
    const n = jsonBytes(body);
    if (n > core.config.maxCallSpecBytes)
      throw new ApiError(
        "value_too_large",
        `body.value: ${n} bytes, over the limit of ${core.config.maxCallSpecBytes}; store it as a blob`,
      );
    if (body.value?.blob !== undefined && !body.value.blob.startsWith(`${id.namespace}/`))
      throw new ApiError("invalid_body", `body.value.blob: must be a blob of namespace ${id.namespace}`);
    await core.blobs.put(stateRef(id.namespace, p.request, p.key), Buffer.from(JSON.stringify(body), "utf8"));
    return {};
  });

  app.put("/blobs", async (req, reply) => {
    const id = podOf(req);
    const q = parse(z.object({ call: objectName.optional() }), req.query, "query");
    let request: string;
    if (q.call !== undefined) {
      const cur = core.graph.get(id.namespace, q.call);
      currentAttempt(core, id, q.call, cur?.status?.attempts ?? 0);
      request = requestOf(cur!);
    } else {
      const requests = new Set(
        core.dispatcher.pods.runningOn(id.namespace, id.pod).map((n) => {
          const c = core.graph.get(id.namespace, n);
          return c ? requestOf(c) : "";
        }),
      );
      requests.delete("");
      if (requests.size !== 1)
        throw new ApiError(
          "invalid_body",
          "query.call: required (the running call the blob belongs to) when the pod runs calls of several requests or none",
        );
      request = [...requests][0]!;
    }
    if (req.headers["content-type"] !== "application/octet-stream")
      throw new ApiError("invalid_body", "header content-type: must be application/octet-stream");
    const ref = newBlobRef(id.namespace, request);
    try {
      await core.blobs.put(ref, req.body as Readable, core.config.maxBlobBytes);
    } catch (err) {
      if (err instanceof BlobTooLargeError)
        throw new ApiError("blob_too_large", `body: a blob may hold at most ${err.limit} bytes`);
      throw err;
    }
    return reply.code(201).send({ blob: ref });
  });

  app.get("/blobs/*", async (req, reply) => {
    const id = podOf(req);
    const ref = (req.params as { "*": string })["*"];
    const why = checkRef(ref);
    if (why) throw new ApiError("invalid_body", `path: blob ref ${why}`);
    if (!ref.startsWith(`${id.namespace}/`))
      throw new ApiError("forbidden_blob", `path: blob ${ref} is not in namespace ${id.namespace}`);
    const request = ref.split("/")[1]!;
    if (!podRunsRequest(core, id, request))
      throw new ApiError(
        "forbidden_blob",
        `path: blob ${ref} belongs to request ${request}, which pod ${id.pod} runs no call of`,
      );
    const blob = await core.blobs.get(ref);
    if (!blob) throw new ApiError("blob_not_found", `path: no blob ${ref}`);
    reply.header("content-type", "application/octet-stream").header("content-length", String(blob.size));
    return reply.send(blob.stream);
  });
};
