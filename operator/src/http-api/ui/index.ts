// The read-only web view under /ui/: static files (no data in them, so no auth) that call the v1
// JSON routes, which the auth hook guards as for any client (the page sends no credentials of its
// own; a proxy in front adds them). The JSON routes it needs beyond Tensorlake's are in routes.ts.
import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import type { HttpApiDeps } from "../types.js";
import { type Assets, loadAssets } from "./assets.js";
import { uiRoutes } from "./routes.js";

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-cache",
};

export interface WebViewOptions {
  /** The files to serve (tests); default: the built ones (assets.ts). */
  assets?: () => Promise<Assets>;
}

export function webView(deps: HttpApiDeps, opts: WebViewOptions = {}) {
  const assets = opts.assets ?? loadAssets;
  const serve = async (name: string, reply: FastifyReply) => {
    let a;
    try {
      a = (await assets()).get(name);
    } catch (e) {
      deps.log.error("web view: its files could not be built", { err: e });
      return reply.code(503).send({ code: "unavailable", message: "the web view's files are not available" });
    }
    if (!a)
      return reply.code(404).send({ code: "not_found", message: `web view file ${name.slice(0, 100)}: not found` });
    return reply.headers(SECURITY_HEADERS).type(a.type).send(a.body);
  };
  return async (app: FastifyInstance) => {
    const hide = { hide: true } as object;
    app.get("/ui", { schema: hide }, async (_req, reply) => reply.redirect("/ui/", 308));
    app.get("/ui/", { schema: hide }, async (_req, reply) => serve("index.html", reply));
    app.get(
      "/ui/:file",
      { schema: { hide: true, params: z.object({ file: z.string().min(1).max(128) }) } as object },
      async (req, reply) => serve((req.params as { file: string }).file, reply),
    );
    await app.register(uiRoutes(deps));
  };
}
