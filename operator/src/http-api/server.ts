// The operator's public HTTP server: health, the v1 invoke API (Tensorlake's routes), and the
// OpenAPI document. buildHttpApi() makes the fastify instance without listening, so tests use
// inject() and main.ts decides where it listens. Other parts may register routes through
// `extraRoutes`; /metrics has its own port (metrics/server.ts), never this public one.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyPluginAsync } from "fastify";
import {
  DEFAULT_BODY_LIMIT,
  DEFAULT_MAX_FILE_BYTES,
  InputError,
  MultipartBody,
  RawBody,
  parseJsonBody,
  rawType,
  tooLarge,
  utf8,
} from "./inputs.js";
import { boundaryOf } from "./multipart.js";
import { applicationRoutes } from "./routes/applications.js";
import { deployRoutes } from "./routes/deploy.js";
import { invokeRoutes } from "./routes/invoke.js";
import { requestRoutes } from "./routes/requests.js";
import { webView } from "./ui/index.js";
import { ANONYMOUS } from "./auth.js";
import { DEFAULT_SSE_MAX_DURATION_MS, DEFAULT_SSE_MAX_PER_CLIENT, StreamLimiter } from "./streams.js";
import type { AccessCheck, HttpApiDeps } from "./types.js";
import { type RouteDoc, openApiDocument, useZod } from "./zod-schemas.js";

export { DEFAULT_BODY_LIMIT, DEFAULT_MAX_FILE_BYTES };

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

  const maxFileBytes = deps.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  // Forms and raw bodies are not read here: the route streams them (Files go to the blob store as
  // they arrive), so these parsers check only what the headers say.
  app.addContentTypeParser("multipart/form-data", (req, payload, done) => {
    const type = String(req.headers["content-type"]);
    if (!boundaryOf(type)) return done(new InputError("body: malformed multipart/form-data (no boundary)"));
    if (req.headers["content-length"] === "0")
      return done(new InputError("body: malformed multipart/form-data (empty)"));
    done(null, new MultipartBody(type, payload));
  });
  app.addContentTypeParser("application/python-pickle", (_req, _payload, done) =>
    done(new InputError("body: pickled values are not accepted over HTTP; send application/json", 415)),
  );
  // JSON is read whole, under the body limit (fastify's own check, 413).
  app.removeContentTypeParser(["text/plain", "application/json"]);
  const parseJson = async (req: { headers: Record<string, unknown> }, body: Buffer) =>
    parseJsonBody(utf8(body, "body"), "body", req.headers["content-type"] as string | undefined);
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, parseJson);
  app.addContentTypeParser(/^[^/;]+\/[^;]*\+json(;|$)/, { parseAs: "buffer" }, parseJson);
  // Any other body is one raw positional argument (Tensorlake sends Files and HttpBody so);
  // text/plain too, so that text reaches the function as the bytes the client sent.
  app.addContentTypeParser("*", (req, payload, done) => {
    if (req.headers["content-length"] === "0") return done(null, undefined);
    try {
      const type = rawType(req.headers["content-type"], "body");
      // A body announced over the file limit is refused before a byte of it is read.
      if (Number(req.headers["content-length"]) > maxFileBytes) throw tooLarge("body", maxFileBytes, " for a file");
      done(null, new RawBody(type, payload));
    } catch (e) {
      done(e as Error);
    }
  });

  app.setErrorHandler((err: FastifyError | InputError, req, reply) => {
    // An answer before the body ended (a File over the limit, a bad part): the rest is read and
    // dropped while the connection closes, so that the client sees the answer, not a reset.
    if (!req.raw.complete && !req.raw.destroyed) {
      reply.header("connection", "close");
      req.raw.resume();
    }
    if (err instanceof InputError) return reply.code(err.statusCode).send({ code: err.code, message: err.message });
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
      description: `Tensorlake-compatible v1 routes; namespaces are Kubernetes namespaces. Bearer tokens are checked with TokenReview and SubjectAccessReview on functioncalls.trellis.dev. Body limit: ${bodyLimit} bytes (JSON bodies; a form's fields and JSON parts together). Files (raw bodies, multipart file parts) are streamed to the blob store, at most ${maxFileBytes} bytes each; File outputs are streamed back.`,
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
