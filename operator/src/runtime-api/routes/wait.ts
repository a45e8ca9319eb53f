// POST /wait: long-poll for outcomes of calls of a request the pod is working on.
import type { FastifyPluginAsync } from "fastify";
import { waitRequest } from "../../../../protocol/index.js";
import { orThrow } from "../errors.js";
import { type RouteOptions, parse, podOf } from "../context.js";

export const waitRoutes: FastifyPluginAsync<RouteOptions> = async (app, { port }) => {
  app.post("/wait", async (req) => {
    const body = parse(waitRequest, req.body);
    const outcomes = orThrow(await port.wait(podOf(req), body.calls, body.mode, body.waitMs));
    return { outcomes };
  });
};
