// buildRuntimeApi: the fastify app sidecars talk to (not listening; main.ts listens). One plugin
// per route group under RUNTIME_API_PREFIX; every body is validated with the zod schemas of
// protocol/; every error is an errorBody from the catalog. What the routes ask of the operator
// goes through the RuntimePort; blob bytes stream between the pod and the blob store.
import Fastify, { type FastifyInstance } from "fastify";
import { RUNTIME_API_PREFIX } from "../../../protocol/index.js";
import type { RouteOptions, RuntimeApiDeps } from "./context.js";
import { authenticate } from "./credentials.js";
import { ApiError } from "./errors.js";
import type { PodIdentity, RuntimePort } from "./port.js";
import { callRoutes } from "./routes/calls.js";
import { dataRoutes } from "./routes/data.js";
import { podRoutes } from "./routes/pods.js";
import { waitRoutes } from "./routes/wait.js";

export type { RuntimeApiDeps };

export function buildRuntimeApi(port: RuntimePort, deps: RuntimeApiDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 256 * 1024 * 1024 });
  // Blobs stream through untouched (the blob store enforces its size limit).
  app.addContentTypeParser("application/octet-stream", (_req, payload, done) => done(null, payload));

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send({ code: err.code, message: err.message });
    const e = err as { statusCode?: number; message?: string };
    if (typeof e.statusCode === "number" && e.statusCode < 500)
      return reply.code(e.statusCode).send({ code: "invalid_body", message: `body: ${e.message ?? "invalid"}` });
    deps.logger?.error("runtime API handler failed", { err });
    return reply.code(500).send({ code: "internal", message: `internal error: ${e.message ?? String(err)}` });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ code: "route_not_found", message: `${req.method} ${req.url}: no such route` }),
  );

  app.register(
    async (api) => {
      api.decorateRequest("trellisPod", undefined as unknown as PodIdentity);
      api.addHook("onRequest", async (req) => {
        const { namespace, pod } = authenticate(deps.operatorKey, req.headers);
        const ident = deps.podIdentity(namespace, pod);
        if (!ident)
          throw new ApiError(
            "pod_unknown",
            `pod ${namespace}/${pod}: not a function pod known to the operator (labels trellis.dev/application and trellis.dev/function)`,
          );
        req.trellisPod = { namespace, pod, ...ident };
      });
      const opts: RouteOptions = { port, deps };
      await api.register(podRoutes, opts);
      await api.register(callRoutes, opts);
      await api.register(waitRoutes, opts);
      await api.register(dataRoutes, opts);
    },
    { prefix: RUNTIME_API_PREFIX },
  );
  return app;
}
