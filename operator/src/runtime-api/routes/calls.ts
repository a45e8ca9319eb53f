// Reports on a call the pod runs: result, failure, tail, progress; and the calls it makes.
import type { FastifyPluginAsync } from "fastify";
import { z } from "zod";
import {
  childrenRequest,
  failureRequest,
  objectName,
  progressRequest,
  resultRequest,
  tailRequest,
} from "../../../../protocol/index.js";
import { orThrow } from "../errors.js";
import { type RouteOptions, parse, podOf } from "../context.js";
import { assertRefs, childValues, scopeOfCall } from "../refs.js";

const params = z.object({ name: objectName });

export const callRoutes: FastifyPluginAsync<RouteOptions> = async (app, { port }) => {
  const nameOfReq = (p: unknown) => parse(params, p, "path").name;

  app.post("/calls/:name/result", async (req) => {
    const name = nameOfReq(req.params);
    const body = parse(resultRequest, req.body);
    assertRefs([[body.output, "body.output"]], () => scopeOfCall(port, podOf(req), name));
    orThrow(await port.reportResult(podOf(req), name, body.attempt, body.output));
    return {};
  });

  app.post("/calls/:name/failure", async (req) => {
    const name = nameOfReq(req.params);
    const body = parse(failureRequest, req.body);
    orThrow(await port.reportFailure(podOf(req), name, body));
    return {};
  });

  app.post("/calls/:name/tail", async (req) => {
    const name = nameOfReq(req.params);
    const body = parse(tailRequest, req.body);
    orThrow(await port.reportTail(podOf(req), name, body.attempt, body.tailCall));
    return {};
  });

  app.post("/calls/:name/children", async (req) => {
    const name = nameOfReq(req.params);
    const body = parse(childrenRequest, req.body);
    assertRefs(childValues(body.calls), () => scopeOfCall(port, podOf(req), name));
    return orThrow(await port.createChildren(podOf(req), name, body.attempt, body.calls));
  });

  app.post("/calls/:name/progress", async (req) => {
    const name = nameOfReq(req.params);
    const body = parse(progressRequest, req.body);
    orThrow(port.reportProgress(podOf(req), name, body));
    return {};
  });
};
