// Request state (GET/PUT /requests/:request/state/:key) and blobs (PUT /blobs, GET /blobs/<ref>),
// both in the blob store under "<namespace>/<request>/", so they go with the request. The port
// says whether and where; the bytes stream between the pod and the blob store.
import type { FastifyPluginAsync } from "fastify";
import type { Readable } from "node:stream";
import { z } from "zod";
import { blobUrlsRequest, objectName, STATE_KEY, stateValue } from "../../../../protocol/index.js";
import { BlobTooLargeError } from "../../blobs/index.js";
import { ApiError, orThrow } from "../errors.js";
import { type RouteOptions, parse, podOf } from "../context.js";
import { assertRefs } from "../refs.js";
import { type Rejectable, isRejection } from "../port.js";

/** Long enough to start a transfer of a large value; a URL is asked for just before it is used. */
const BLOB_URL_SECONDS = 300;

/** A rejection's message with the field it is about (the port names "path" or nothing). */
function at<T>(field: string, x: Rejectable<T>): Rejectable<T> {
  if (!isRejection(x)) return x;
  return { ...x, message: `${field}: ${x.message.replace(/^path: /, "")}` };
}

const stateParams = z.object({
  request: objectName,
  key: z.string().regex(STATE_KEY, { message: "must be 1-253 letters, digits, '.', '_' or '-'" }),
});

export const dataRoutes: FastifyPluginAsync<RouteOptions> = async (app, { port, deps }) => {
  const { blobs } = deps;

  app.get("/requests/:request/state/:key", async (req) => {
    const p = parse(stateParams, req.params, "path");
    const ref = orThrow(port.stateToRead(podOf(req), p.request, p.key));
    const bytes = await blobs.read(ref);
    return bytes ? (JSON.parse(bytes.toString("utf8")) as unknown) : {};
  });

  app.put("/requests/:request/state/:key", async (req) => {
    const p = parse(stateParams, req.params, "path");
    const body = parse(stateValue, req.body);
    const ref = orThrow(port.stateToWrite(podOf(req), p.request, p.key, body));
    assertRefs([[body.value, "body.value"]], { namespace: podOf(req).namespace, request: p.request });
    await blobs.put(ref, Buffer.from(JSON.stringify(body), "utf8"));
    return {};
  });

  app.put("/blobs", async (req, reply) => {
    const q = parse(z.object({ call: objectName.optional() }), req.query, "query");
    const ref = orThrow(port.blobToPut(podOf(req), q.call));
    if (req.headers["content-type"] !== "application/octet-stream")
      throw new ApiError("invalid_body", "header content-type: must be application/octet-stream");
    try {
      await blobs.put(ref, req.body as Readable, port.maxBlobBytes);
    } catch (err) {
      if (err instanceof BlobTooLargeError)
        throw new ApiError("blob_too_large", `body: a blob may hold at most ${err.limit} bytes`);
      throw err;
    }
    return reply.code(201).send({ blob: ref });
  });

  // Presigned URLs: the pod moves the bytes; the operator only decides which objects it may touch.
  app.post("/blob-urls", async (req) => {
    const presign = blobs.presign?.bind(blobs);
    if (!presign)
      throw new ApiError("direct_blobs_unavailable", "the operator's blob store hands out no URLs: use PUT/GET /blobs");
    const body = parse(blobUrlsRequest, req.body);
    const pod = podOf(req);
    let put: { blob: string; url: string } | undefined;
    if (body.put) {
      if (body.put.size > port.maxBlobBytes)
        throw new ApiError("blob_too_large", `body.put.size: a blob may hold at most ${port.maxBlobBytes} bytes`);
      const blob = orThrow(at("body.put.call", port.blobToPut(pod, body.put.call)));
      put = { blob, url: await presign(blob, { method: "PUT", size: body.put.size }, BLOB_URL_SECONDS) };
    }
    const refs = (body.get ?? []).map((r, i) => orThrow(at(`body.get[${i}]`, port.blobToGet(pod, r))));
    const get = await Promise.all(
      refs.map(async (blob) => ({ blob, url: await presign(blob, { method: "GET" }, BLOB_URL_SECONDS) })),
    );
    return { ...(put ? { put } : {}), ...(body.get ? { get } : {}), expiresInSeconds: BLOB_URL_SECONDS };
  });

  app.get("/blobs/*", async (req, reply) => {
    const ref = orThrow(port.blobToGet(podOf(req), (req.params as { "*": string })["*"]));
    const blob = await blobs.get(ref);
    if (!blob) throw new ApiError("blob_not_found", `path: no blob ${ref}`);
    reply.header("content-type", "application/octet-stream").header("content-length", String(blob.size));
    return reply.send(blob.stream);
  });
};
