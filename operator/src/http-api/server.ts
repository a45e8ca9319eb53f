// The operator's public HTTP server: health, the v1 invoke API (Tensorlake's routes), and the
// OpenAPI document. buildHttpApi() makes the fastify instance without listening, so tests use
// inject() and main.ts decides where it listens. Other parts may register routes through
// `extraRoutes`; /metrics has its own port (metrics/server.ts), never this public one.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyPluginAsync } from "fastify";
import { InputError, MultipartBody, isJsonType, parseJsonBody, rawInput, utf8 } from "./inputs.js";
import { applicationRoutes } from "./routes/applications.js";
import { deployRoutes } from "./routes/deploy.js";
import { invokeRoutes } from "./routes/invoke.js";
import { requestRoutes } from "./routes/requests.js";
import { webView } from "./ui/index.js";
import { ANONYMOUS } from "./auth.js";
import { DEFAULT_SSE_MAX_DURATION_MS, DEFAULT_SSE_MAX_PER_CLIENT, StreamLimiter } from "./streams.js";
import type { AccessCheck, HttpApiDeps } from "./types.js";
import { type RouteDoc, openApiDocument, useZod } from "./zod-schemas.js";

/** Default body limit: 10 MiB (TRELLIS_HTTP_BODY_LIMIT_BYTES). Inputs over 64 KiB go to the blob store. */
export const DEFAULT_BODY_LIMIT = 10 * 1024 * 1024;

declare module "fastify" {
  interface FastifyContextConfig {
    access?: Omit<AccessCheck, "namespace">;
  }
}

export interface BuildOptions {
  /** Plugins registered on the same server. */
  extraRoutes?: FastifyPluginAsync[];
}

/** The token of `Authorization: Bearer <token>` (scheme case-insensitive), else undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^bearer\s+(.+)$/i.exec(header ?? "");
  return m?.[1]?.trim() || undefined;
}

export async function buildHttpApi(deps: HttpApiDeps, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const bodyLimit = deps.bodyLimit ?? DEFAULT_BODY_LIMIT;
  // Params up to 1 KiB reach the zod checks (names are up to 127, ids up to 253); the router default is 100 (414).
  const app = Fastify({ logger: false, bodyLimit, maxParamLength: 1024 });
  const routes: RouteDoc[] = [];
  useZod(app, routes);

  app.addContentTypeParser(
    "multipart/form-data",
    { parseAs: "buffer" },
    async (req: { headers: Record<string, unknown> }, body: Buffer) => {
      const type = String(req.headers["content-type"]);
      try {
        return new MultipartBody(
          await new Response(new Uint8Array(body), { headers: { "content-type": type } }).formData(),
        );
      } catch (e) {
        throw new InputError(`body: malformed multipart/form-data (${(e as Error).message})`);
      }
    },
  );
  app.addContentTypeParser("application/python-pickle", (_req, _payload, done) =>
    done(new InputError("body: pickled values are not accepted over HTTP; send application/json", 415)),
  );
  // Any other body is one raw positional argument (Tensorlake sends Files and HttpBody so);
  // text/plain too, so that text reaches the function as the bytes the client sent.
  app.removeContentTypeParser(["text/plain", "application/json"]);
  const parse = async (req: { headers: Record<string, unknown> }, body: Buffer) => {
    const type = req.headers["content-type"] as string | undefined;
    if (isJsonType(type)) return parseJsonBody(utf8(body, "body"), "body", type);
    return body.length ? rawInput(type, body, "body") : undefined;
  };
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, parse);
  app.addContentTypeParser("*", { parseAs: "buffer" }, parse);

  app.setErrorHandler((err: FastifyError | InputError, req, reply) => {
    if (err instanceof InputError)
      return reply.code(err.statusCode).send({ code: "invalid_input", message: err.message });
    const fe = err as FastifyError;
    if (fe.validation || fe.validationContext)
      return reply.code(400).send({ code: "invalid_request", message: fe.message });
    if (fe.code === "FST_ERR_CTP_BODY_TOO_LARGE")
      return reply
        .code(413)
        .send({ code: "body_too_large", message: `body: larger than the limit of ${bodyLimit} bytes` });
    if (fe.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
      return reply.code(415).send({
        code: "unsupported_media_type",
        message: `body: content type ${req.headers["content-type"]} is not supported; send application/json or multipart/form-data`,
      });
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500)
      return reply.code(fe.statusCode).send({ code: fe.code ?? "bad_request", message: `body: ${fe.message}` });
    deps.log.error("http api error", { err, method: req.method, url: req.url });
    return reply.code(500).send({ code: "internal", message: (err as Error).message });
  });

  app.decorate(
    "sseStreams",
    new StreamLimiter({
      maxPerClient: deps.sse?.maxPerClient ?? DEFAULT_SSE_MAX_PER_CLIENT,
      maxDurationMs: deps.sse?.maxDurationMs ?? DEFAULT_SSE_MAX_DURATION_MS,
    }),
  );
  app.decorateRequest("trellisUser", undefined);
  // Kubernetes RBAC decides: every v1 route names its verb and resource. In onRequest, before any
  // body is read or parsed, so an unauthenticated caller costs no parser work.
  app.addHook("onRequest", async (req, reply) => {
    const access = req.routeOptions.config.access;
    if (!access) return;
    if (deps.serving && !deps.serving())
      return reply.code(503).send({
        code: "unavailable",
        message: "the operator is not serving yet (its caches are syncing or its blob store does not answer yet)",
      });
    const namespace = (req.params as { namespace?: string }).namespace ?? "";
    const d = await deps.authorizer.authorize(bearerToken(req.headers.authorization), { namespace, ...access });
    if (!d.allowed)
      return reply.code(d.status).send({ code: d.status === 401 ? "unauthorized" : "forbidden", message: d.message });
    if (d.user !== ANONYMOUS) req.trellisUser = d.user;
  });

  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .send({ code: "not_found", message: `route ${req.method} ${req.url.split("?")[0]!.slice(0, 200)}: not found` }),
  );
  app.get("/healthz", { schema: { hide: true } as object }, async () => ({ ok: true }));
  app.get("/readyz", { schema: { hide: true } as object }, async (_req, reply) => {
    const r = deps.readiness?.() ?? { ok: true };
    return r.ok ? r : reply.code(503).send(r);
  });
  app.get("/openapi.json", { schema: { hide: true } as object }, async () =>
    openApiDocument(routes, {
      title: "Trellis invoke API",
      version: "v1",
      description: `Tensorlake-compatible v1 routes; namespaces are Kubernetes namespaces. Bearer tokens are checked with TokenReview and SubjectAccessReview on functioncalls.trellis.dev. Body limit: ${bodyLimit} bytes.`,
    }),
  );

  await app.register(applicationRoutes(deps));
  await app.register(deployRoutes(deps));
  await app.register(invokeRoutes(deps));
  await app.register(requestRoutes(deps));
  await app.register(webView(deps));
  for (const r of opts.extraRoutes ?? []) await app.register(r);
  return app;
}
