// GET /v1/namespaces/:namespace/applications[/:application] — from the Application objects.
import type { FastifyInstance } from "fastify";
import { appParams, applicationList, applicationView, errorBody, nsParams } from "../schemas.js";
import type { HttpApiDeps } from "../types.js";
import { applicationView as view } from "../views.js";

export function applicationRoutes(deps: HttpApiDeps) {
  return async (app: FastifyInstance) => {
    app.get(
      "/v1/namespaces/:namespace/applications",
      {
        schema: {
          summary: "List the applications of a namespace",
          tags: ["applications"],
          params: nsParams,
          response: { 200: applicationList },
        },
        config: { access: { verb: "list", resource: "applications" } },
      },
      async (req) => {
        const { namespace } = req.params as { namespace: string };
        const apps = deps.applications
          .list(namespace)
          .map(view)
          .sort((a, b) => a.name.localeCompare(b.name));
        return { applications: apps };
      },
    );
    app.get(
      "/v1/namespaces/:namespace/applications/:application",
      {
        schema: {
          summary: "Describe one application",
          tags: ["applications"],
          params: appParams,
          response: { 200: applicationView, 404: errorBody },
        },
        config: { access: { verb: "get", resource: "applications" } },
      },
      async (req, reply) => {
        const { namespace, application } = req.params as { namespace: string; application: string };
        const a = deps.applications.get(`${namespace}/${application}`);
        if (!a)
          return reply
            .code(404)
            .send({ code: "not_found", message: `application ${application} not found in namespace ${namespace}` });
        return view(a);
      },
    );
  };
}
