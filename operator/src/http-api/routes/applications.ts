// GET /v1/namespaces/:namespace/applications[/:application] — from the Application objects, in
// Tensorlake's shapes: the list of `Application` entries, and one application's ApplicationManifest.
import type { FastifyInstance } from "fastify";
import { appParams, applicationList, applicationManifest, errorBody, nsParams } from "../schemas.js";
import { applicationNotFound } from "../request-lookup.js";
import type { HttpApiDeps } from "../types.js";
import { applicationListEntry, findApplication, storedManifest, synthesizeManifest } from "../manifest.js";

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
          .map(applicationListEntry)
          .sort((a, b) => a.name.localeCompare(b.name));
        return { applications: apps };
      },
    );
    app.get(
      "/v1/namespaces/:namespace/applications/:application",
      {
        schema: {
          summary: "One application's manifest (Tensorlake's ApplicationManifest)",
          description:
            "The manifest Tensorlake's deploy route stored, verbatim; else one made from the Application and the function table its runtime discovered.",
          tags: ["applications"],
          params: appParams,
          response: { 200: applicationManifest, 404: errorBody },
        },
        config: { access: { verb: "get", resource: "applications" } },
      },
      async (req, reply) => {
        const { namespace, application } = req.params as { namespace: string; application: string };
        const a = findApplication(deps, namespace, application);
        if (!a) return applicationNotFound(reply, namespace, application);
        const stored = storedManifest(a);
        // Verbatim: the client validates the manifest it deployed, byte for byte what it sent.
        if (stored) return reply.type("application/json; charset=utf-8").send(stored.text);
        return synthesizeManifest(a);
      },
    );
  };
}
