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
import { callKey } from "../../engine/calls.js";
import { createChildren } from "../children.js";
import { currentAttempt, reportFailure, reportResult, reportTail } from "../reports.js";
import { type RuntimeApiDeps, parse, podOf } from "../server.js";

const params = z.object({ name: objectName });

export const callRoutes: FastifyPluginAsync<{ deps: RuntimeApiDeps }> = async (app, { deps }) => {
  const { core } = deps;
  const nameOfReq = (p: unknown) => parse(params, p, "path").name;

  app.post("/calls/:name/result", async (req) => {
    const name = nameOfReq(req.params);
    const body = parse(resultRequest, req.body);
    await reportResult(core, podOf(req), name, body.attempt, body.output);
    return {};
  });

  app.post("/calls/:name/failure", async (req) => {
    const name = nameOfReq(req.params);
    const body = parse(failureRequest, req.body);
    await reportFailure(core, podOf(req), name, body.attempt, body.kind, body.error, body.retryable);
    return {};
  });

  app.post("/calls/:name/tail", async (req) => {
    const name = nameOfReq(req.params);
    const body = parse(tailRequest, req.body);
    await reportTail(core, podOf(req), name, body.attempt, body.tailCall);
    return {};
  });

  app.post("/calls/:name/children", async (req) => {
    const name = nameOfReq(req.params);
    const body = parse(childrenRequest, req.body);
    return createChildren(core, podOf(req), name, body.attempt, body.calls);
  });

  app.post("/calls/:name/progress", async (req) => {
    const name = nameOfReq(req.params);
    const body = parse(progressRequest, req.body);
    const id = podOf(req);
    const cur = core.graph.get(id.namespace, name);
    // Progress names no attempt: any call running on this pod may report it.
    currentAttempt(core, id, name, cur?.status?.attempts ?? 0);
    core.progress.update(callKey(id.namespace, name), body);
    return {};
  });
};
