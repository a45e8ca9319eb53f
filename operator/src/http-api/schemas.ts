// Shapes of the v1 routes (Tensorlake's names), as zod: validation and the OpenAPI document.
import { z } from "zod";
import { applicationRef, objectName } from "../../../protocol/index.js";

export const nsParams = z.object({
  namespace: objectName.meta({ description: "Kubernetes namespace." }),
});
export const appParams = nsParams.extend({
  application: applicationRef.meta({ description: "Application name (object name or Tensorlake name)." }),
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
  application_version: z
    .string()
    .meta({ description: "The application's version now (Tensorlake's, else the generation)." }),
  failure_reason: z.string().nullable(),
  request_error: z
    .object({ message: z.string(), function_name: z.string() })
    .nullable()
    .meta({ description: "The RequestError that failed the request, and the function that raised it." }),
  error: z.object({ type: z.string(), message: z.string() }).nullable(),
  phase: z.string(),
  created_at: z.number().int().meta({ description: "Milliseconds since the epoch." }),
  finished_at: z.number().int().nullable().meta({ description: "Milliseconds since the epoch." }),
  progress,
  waiting: z
    .object({ reason: z.literal("code_load_failed"), message: z.string() })
    .nullable()
    .meta({ description: "Why an unfinished request cannot start: its application's code failed to load." }),
});

export const invokeResponse = z.object({ request_id: z.string() });

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100).meta({ description: "Most requests returned." }),
  // Trellis' own (the web view pages with them); Tensorlake's client sends neither.
  status: z
    .enum(["pending", "running", "success", "failure"])
    .optional()
    .meta({ description: "Only requests with this status." }),
  offset: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(0)
    .meta({ description: "Requests skipped first (after the status and time filters), for paging." }),
  created_after: z.coerce
    .number()
    .int()
    .min(0)
    .max(8_640_000_000_000_000)
    .optional()
    .meta({ description: "Only requests created at or after this time (milliseconds since the epoch)." }),
  created_before: z.coerce
    .number()
    .int()
    .min(0)
    .max(8_640_000_000_000_000)
    .optional()
    .meta({ description: "Only requests created before this time (milliseconds since the epoch)." }),
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

export const applicationEntry = z.object({
  name: z.string(),
  description: z.string(),
  tags: z.record(z.string(), z.string()),
  version: z.string(),
  created_at: z.number().int().nullable().meta({ description: "Milliseconds since the epoch." }),
  tombstoned: z.boolean(),
  namespace: z.string(),
  entrypoint: z.string(),
  functions: z.array(z.string()),
  ready: z.boolean(),
});
export const applicationList = z.object({ applications: z.array(applicationEntry) });

/** Tensorlake's ApplicationManifest (the fields its client reads; a stored manifest may hold more). */
export const applicationManifest = z
  .object({
    name: z.string(),
    description: z.string(),
    tags: z.record(z.string(), z.string()),
    version: z.string(),
    runtime: z.literal("python"),
    functions: z.record(z.string(), z.record(z.string(), z.unknown())),
    entrypoint: z.object({
      function_name: z.string(),
      input_serializer: z.string(),
      inputs_base64: z.string().meta({ description: "Pickled list of EntryPointInputManifest, base64." }),
      output_serializer: z.string(),
      output_type_hints_base64: z.string().meta({ description: "Pickled output type hint, base64." }),
    }),
  })
  .loose();
