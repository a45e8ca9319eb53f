// POST /wait: long-poll for outcomes of calls of a request the pod is working on.
import type { FastifyPluginAsync } from "fastify";
import { requestOf } from "../../engine/calls.js";
import { ApiError, errors } from "../errors.js";
import { waitRequest } from "../../../../protocol/index.js";
import { type RuntimeApiDeps, parse, podOf } from "../server.js";
import { podRunsRequest } from "./data.js";

export const waitRoutes: FastifyPluginAsync<{ deps: RuntimeApiDeps }> = async (app, { deps }) => {
  const { core } = deps;
  app.post("/wait", async (req) => {
    const body = parse(waitRequest, req.body);
    const id = podOf(req);
    let request: string | undefined;
    body.calls.forEach((n, i) => {
      const c = core.graph.get(id.namespace, n);
      if (!c) throw new ApiError("call_not_found", `body.calls[${i}]: no FunctionCall named ${n}`);
      const r = requestOf(c);
      if (request === undefined) request = r;
      else if (r !== request)
        throw new ApiError(
          "not_in_request",
          `body.calls[${i}]: ${n} belongs to request ${r}, not ${request}; wait on one request at a time`,
        );
    });
    if (!podRunsRequest(core, id, request!)) throw errors.notInRequest("body.calls", request!, id.pod);
    const outcomes = await core.waiters.wait(id.namespace, body.calls, body.mode, body.waitMs);
    return { outcomes };
  });
};
