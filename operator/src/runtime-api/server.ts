// buildRuntimeApi: the fastify app sidecars talk to (not listening; main.ts listens). One plugin
// per route group under RUNTIME_API_PREFIX; every body is validated with the zod schemas of
// protocol/; every error is an errorBody from the catalog. What the routes ask of the operator
// goes through the RuntimePort; blob bytes stream between the pod and the blob store.
import Fastify, { type FastifyInstance } from "fastify";
import { RUNTIME_API_PREFIX } from "../../../protocol/index.js";
import type { RouteOptions, RuntimeApiDeps } from "./context.js";
import { authenticate } from "./credentials.js";
import { ApiError } from "./errors.js";
import { BODY_LIMITS, type BodyLimits, assertJsonDepth, bodyLimitOf } from "./limits.js";
import type { PodIdentity, RuntimePort } from "./port.js";
import { callRoutes } from "./routes/calls.js";
import { dataRoutes } from "./routes/data.js";
import { podRoutes } from "./routes/pods.js";
import { waitRoutes } from "./routes/wait.js";

export type { RuntimeApiDeps };

export function buildRuntimeApi(
  port: RuntimePort,
  deps: RuntimeApiDeps,
  limits: BodyLimits = BODY_LIMITS,
): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: limits.otherBodyBytes });
  // Sidecars send JSON and blob bytes only: a text body is refused (415) before anything reads it.
  app.removeContentTypeParser("text/plain");
  // Blobs stream through untouched (the blob store enforces its size limit).
  app.addContentTypeParser("application/octet-stream", (_req, payload, done) => done(null, payload));

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send({ code: err.code, message: err.message });
    const e = err as { statusCode?: number; message?: string; code?: string };
    if (e.code === "FST_ERR_CTP_BODY_TOO_LARGE")
      return reply.code(413).send({
        code: "value_too_large",
        message: `body: over the limit of ${req.routeOptions.bodyLimit} bytes of ${req.method} ${req.routeOptions.url}; pass large values as blobs`,
      });
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
      // Every route's body limit; bodies are read and parsed only after onRequest authenticated the pod.
      api.addHook("onRoute", (route) => {
        route.bodyLimit ??= bodyLimitOf(route, limits);
      });
      api.addHook("preValidation", async (req) => assertJsonDepth(req.body, limits.maxJsonDepth));
      api.addHook("onRequest", async (req) => {
        req.trellisPod = authenticate(deps, req.headers);
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
