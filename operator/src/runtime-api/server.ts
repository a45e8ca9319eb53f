// buildRuntimeApi: the fastify app sidecars talk to (not listening; main.ts listens). One plugin
// per route group under RUNTIME_API_PREFIX; every body is validated with the zod schemas of
// messages.ts; every error is an errorBody from the catalog.
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { z } from "zod";
import type { DiscoveredFunction } from "../application/types.js";
import type { EngineCore } from "../engine/engine.js";
import type { PodIdentity } from "../engine/pods.js";
import { authenticate } from "./credentials.js";
import { ApiError, fromZod } from "./errors.js";
import { type codeLoadFailureRequest, RUNTIME_API_PREFIX } from "../../../protocol/index.js";
import { callRoutes } from "./routes/calls.js";
import { dataRoutes } from "./routes/data.js";
import { podRoutes } from "./routes/pods.js";
import { waitRoutes } from "./routes/wait.js";

export interface RuntimeApiDeps {
  core: EngineCore;
  operatorKey: string | Uint8Array;
  podIdentity: (namespace: string, pod: string) => { application: string; function: string } | undefined;
  onDiscovered?: (namespace: string, application: string, functions: DiscoveredFunction[]) => void;
  /** A pod's worker could not import the code (the Application shows CodeLoaded=False). */
  onCodeLoadFailure?: (namespace: string, application: string, pod: string, failure: CodeLoadFailure) => void;
}

export type CodeLoadFailure = z.infer<typeof codeLoadFailureRequest>;

declare module "fastify" {
  interface FastifyRequest {
    trellisPod: PodIdentity;
  }
}

/** Parses `data` with `schema` or throws invalid_body naming the field and the rule. */
export function parse<S extends z.ZodType>(schema: S, data: unknown, where = "body"): z.infer<S> {
  const r = schema.safeParse(data);
  if (!r.success) throw fromZod(r.error, where);
  return r.data;
}

export const podOf = (req: FastifyRequest): PodIdentity => req.trellisPod;

export function buildRuntimeApi(deps: RuntimeApiDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 256 * 1024 * 1024 });
  // Blobs stream through untouched (the blob store enforces its size limit).
  app.addContentTypeParser("application/octet-stream", (_req, payload, done) => done(null, payload));

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send({ code: err.code, message: err.message });
    const e = err as { statusCode?: number; message?: string };
    if (typeof e.statusCode === "number" && e.statusCode < 500)
      return reply.code(e.statusCode).send({ code: "invalid_body", message: `body: ${e.message ?? "invalid"}` });
    deps.core.logger?.error("runtime API handler failed", { err });
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
      await api.register(podRoutes, { deps });
      await api.register(callRoutes, { deps });
      await api.register(waitRoutes, { deps });
      await api.register(dataRoutes, { deps });
    },
    { prefix: RUNTIME_API_PREFIX },
  );
  return app;
}
