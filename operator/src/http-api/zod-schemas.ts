// Route schemas are zod: fastify validates with them (errors name the field and the rule) and the
// OpenAPI 3 document is generated from the same schemas.
import type { FastifyInstance, FastifySchema } from "fastify";
import { z } from "zod";

type Part = "params" | "querystring" | "body" | "headers";
const PARTS: Part[] = ["params", "querystring", "body", "headers"];

export interface RouteDoc {
  method: string;
  url: string;
  summary?: string;
  tags?: string[];
  schema: FastifySchema & { response?: Record<number, z.ZodType> };
}

export function formatIssues(where: string, err: z.ZodError): string {
  return err.issues
    .map((i) => {
      const path = [where, ...i.path.map(String)].join(".");
      return `${path}: ${i.message}`;
    })
    .join("; ");
}

/** Installs the zod validator and a plain JSON serializer, and collects routes for OpenAPI. */
export function useZod(app: FastifyInstance, routes: RouteDoc[]): void {
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const s = schema as z.ZodType;
    return (data: unknown) => {
      const r = s.safeParse(data);
      if (r.success) return { value: r.data };
      const e = new Error(formatIssues(httpPart ?? "input", r.error)) as Error & { statusCode?: number };
      return { error: e };
    };
  });
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.addHook("onRoute", (r) => {
    if (!r.schema || (r.schema as { hide?: boolean }).hide) return;
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods)
      if (m !== "HEAD")
        routes.push({
          method: m.toLowerCase(),
          url: r.url,
          summary: (r.schema as { summary?: string }).summary,
          tags: (r.schema as { tags?: string[] }).tags,
          schema: r.schema as RouteDoc["schema"],
        });
  });
}

const json = (s: unknown) => z.toJSONSchema(s as z.ZodType, { io: "input", unrepresentable: "any" });

/** Where OpenAPI says each request part other than the body goes. */
const PARAM_IN: Record<Exclude<Part, "body">, string> = { params: "path", querystring: "query", headers: "header" };

/** The OpenAPI 3.0 document of the collected routes. */
export function openApiDocument(routes: RouteDoc[], info: { title: string; version: string; description?: string }) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z_]+)/g, "{$1}");
    (paths[path] ??= {})[r.method] = operation(r);
  }
  return {
    openapi: "3.0.3",
    info,
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    security: [{ bearer: [] }],
    paths,
  };
}

function operation(r: RouteDoc): Record<string, unknown> {
  // `responses: {}` keeps its place in the key order; it is filled in last.
  const op: Record<string, unknown> = { summary: r.summary, tags: r.tags, responses: {} };
  const params = parameters(r.schema);
  if (params.length) op.parameters = params;
  if (r.schema.body) {
    const bodyDoc = (r.schema as { bodyContent?: Record<string, unknown> }).bodyContent;
    op.requestBody = { content: bodyDoc ?? { "application/json": { schema: json(r.schema.body) } } };
  }
  op.responses = responses(r.schema);
  return op;
}

function parameters(schema: RouteDoc["schema"]): unknown[] {
  const params: unknown[] = [];
  for (const part of PARTS) {
    const s = schema[part] as z.ZodType | undefined;
    if (!s || part === "body") continue;
    const js = json(s) as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, sub] of Object.entries(js.properties ?? {})) {
      // Path parameters are always required in OpenAPI.
      const required = part === "params" || !!js.required?.includes(name);
      params.push({ name, in: PARAM_IN[part], required, schema: sub });
    }
  }
  return params;
}

function responses(schema: RouteDoc["schema"]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [code, s] of Object.entries(schema.response ?? {}))
    out[code] = { description: `HTTP ${code}`, content: { "application/json": { schema: json(s) } } };
  return Object.keys(out).length ? out : { default: { description: "response" } };
}
