// register, lease, heartbeat: a pod's life with the dispatcher.
import type { FastifyPluginAsync } from "fastify";
import { codeLoadFailureRequest, heartbeatRequest, leaseRequest, registerRequest } from "../../../../protocol/index.js";
import { ApiError } from "../errors.js";
import { type RouteOptions, parse, podOf } from "../context.js";

export const podRoutes: FastifyPluginAsync<RouteOptions> = async (app, { port, deps }) => {
  const directBlobs = deps.blobs.presign !== undefined;
  app.post("/register", async (req) => {
    const body = parse(registerRequest, req.body);
    const id = podOf(req);
    if (body.function !== id.function)
      throw new ApiError(
        "invalid_body",
        `body.function: pod ${id.pod} runs function ${id.function} (its trellis.dev/function label), not ${body.function}`,
      );
    port.register(id, body.functions);
    return { ...port.settings, directBlobs };
  });

  app.post("/code-load-failure", async (req) => {
    const body = parse(codeLoadFailureRequest, req.body);
    port.codeLoadFailure(podOf(req), body);
    return {};
  });

  app.post("/lease", async (req, reply) => {
    const body = parse(leaseRequest, req.body);
    const hangUp = new AbortController();
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) hangUp.abort();
    });
    return await port.lease(podOf(req), body.capacity, body.waitMs, hangUp.signal);
  });

  app.post("/heartbeat", async (req) => {
    const body = parse(heartbeatRequest, req.body);
    return { cancel: port.heartbeat(podOf(req), body.calls, body.draining, body.lease) };
  });
};
