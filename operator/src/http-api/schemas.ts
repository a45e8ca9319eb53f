// Shapes of the v1 routes (Tensorlake's names), as zod: validation and the OpenAPI document.
import { z } from "zod";
import { objectName } from "../../../protocol/index.js";

export const nsParams = z.object({
  namespace: objectName.meta({ description: "Kubernetes namespace." }),
});
export const appParams = nsParams.extend({
  application: objectName.meta({ description: "Application name." }),
});
export const requestParams = appParams.extend({
  request: objectName.meta({ description: "Request id (the root FunctionCall's name)." }),
});

export const errorBody = z.object({ code: z.string(), message: z.string() });

export const progress = z.object({ current: z.number(), total: z.number(), message: z.string().optional() }).nullable();

export const requestView = z.object({
  id: z.string(),
  application: z.string(),
  function: z.string(),
  status: z.enum(["pending", "running", "success", "failure"]),
  outcome: z.union([z.null(), z.literal("success"), z.object({ failure: z.string() })]).meta({
    description: 'null while the request runs; "success"; or {failure: reason}.',
  }),
  failure_reason: z.string().nullable(),
  request_error: z.object({ message: z.string(), function_name: z.string().nullable() }).nullable(),
  error: z.object({ type: z.string(), message: z.string() }).nullable(),
  phase: z.string(),
  created_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  progress,
});

export const invokeResponse = z.object({ request_id: z.string() });

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100).meta({ description: "Most requests returned." }),
});
export const requestList = z.object({ requests: z.array(requestView) });

export const invokeHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(256)
    .optional()
    .meta({ description: "A retry with the same key returns the same request instead of a new one." }),
});

export const applicationView = z.object({
  name: z.string(),
  namespace: z.string(),
  entrypoint: z.string(),
  functions: z.array(z.string()),
  ready: z.boolean(),
  created_at: z.string().nullable(),
});
export const applicationList = z.object({ applications: z.array(applicationView) });
