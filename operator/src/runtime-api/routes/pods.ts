// register, lease, heartbeat: a pod's life with the dispatcher.
import type { FastifyPluginAsync } from "fastify";
import { ApiError } from "../errors.js";
import { codeLoadFailureRequest, heartbeatRequest, leaseRequest, registerRequest } from "../../../../protocol/index.js";
import { type RuntimeApiDeps, parse, podOf } from "../server.js";

export const podRoutes: FastifyPluginAsync<{ deps: RuntimeApiDeps }> = async (app, { deps }) => {
  const { core } = deps;

  app.post("/register", async (req) => {
    const body = parse(registerRequest, req.body);
    const id = podOf(req);
    if (body.function !== id.function)
      throw new ApiError(
        "invalid_body",
        `body.function: pod ${id.pod} runs function ${id.function} (its trellis.dev/function label), not ${body.function}`,
      );
    core.dispatcher.pods.register(id, body.functions);
    deps.onDiscovered?.(id.namespace, id.application, body.functions);
    return {
      heartbeatIntervalMs: core.config.heartbeatIntervalMs,
      leaseWaitMs: core.config.leaseWaitMs,
      inlineValueLimitBytes: core.config.inlineValueLimitBytes,
    };
  });

  app.post("/code-load-failure", async (req) => {
    const body = parse(codeLoadFailureRequest, req.body);
    const id = podOf(req);
    deps.onCodeLoadFailure?.(id.namespace, id.application, id.pod, body);
    return {};
  });

  app.post("/lease", async (req, reply) => {
    const body = parse(leaseRequest, req.body);
    const hangUp = new AbortController();
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) hangUp.abort();
    });
    const assignments = await core.dispatcher.lease(podOf(req), body.capacity, body.waitMs, hangUp.signal);
    return { assignments };
  });

  app.post("/heartbeat", async (req) => {
    const body = parse(heartbeatRequest, req.body);
    return { cancel: core.dispatcher.pods.heartbeat(podOf(req), body.calls, body.draining) };
  });
};
