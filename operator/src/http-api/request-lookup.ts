// Finding a request from its route parameters, for every route under
// /v1/namespaces/:namespace/applications/:application/requests/:request.
import type { FastifyReply } from "fastify";
import { findApplication } from "./manifest.js";
import type { CallObject, HttpApiDeps } from "./types.js";
import { isRoot } from "./views.js";

export type RequestParams = { namespace: string; application: string; request: string };

export function requestLookup(deps: HttpApiDeps) {
  /** The application's object name: the path may carry its Tensorlake name. */
  const appName = (p: { namespace: string; application: string }) =>
    findApplication(deps, p.namespace, p.application)?.metadata.name ?? p.application;
  /** The request's root call, from the cache or (just created) the API server. */
  const findRoot = async (p: RequestParams): Promise<CallObject | undefined> => {
    const c = deps.calls.get(`${p.namespace}/${p.request}`) ?? (await deps.getCall(p.namespace, p.request));
    return c && isRoot(c) && c.spec.application === appName(p) ? c : undefined;
  };
  const notFound = (reply: FastifyReply, p: RequestParams) =>
    reply.code(404).send({
      code: "not_found",
      message: `request ${p.request} of application ${p.application} not found in namespace ${p.namespace}`,
    });
  return { appName, findRoot, notFound };
}

export const applicationNotFound = (reply: FastifyReply, namespace: string, application: string) =>
  reply
    .code(404)
    .send({ code: "not_found", message: `application ${application} not found in namespace ${namespace}` });
