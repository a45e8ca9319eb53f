// /metrics on a port of its own (TRELLIS_METRICS_PORT): the public HTTP API's port does not serve
// it, so the metrics are reachable only where the NetworkPolicy admits scrapers.
import Fastify, { type FastifyInstance } from "fastify";
import type { Metrics } from "./index.js";

export function buildMetricsServer(metrics: Pick<Metrics, "scrape">): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get("/metrics", async (_req, reply) => {
    const m = await metrics.scrape();
    return reply.type(m.contentType).send(m.body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      code: "not_found",
      message: `route ${req.method} ${req.url.split("?")[0]!.slice(0, 200)}: not found; this port serves GET /metrics only`,
    }),
  );
  return app;
}
