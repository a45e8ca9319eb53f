import { z } from "zod";

export const GROUP = "trellis.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}` as const;

/** Kubernetes object names (RFC 1123 subdomain). */
export const objectName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, {
    message: "must be a lowercase RFC 1123 name (a-z, 0-9, '-', '.')",
  });

/** A function's Python qualified name as written in the code: `name`, or `Class.method` for @cls(). */
export const pythonIdentifier = z
  .string()
  .min(1)
  .max(127)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/, {
    message: "must be a Python identifier (or Class.method)",
  });

/** Largest inline value kept in etcd; bigger ones go to the blob store. */
export const INLINE_VALUE_LIMIT_BYTES = 64 * 1024;

/**
 * One argument, keyword argument or output. Exactly one field is set: the apiserver checks it
 * (CEL) and so does the operator (zod refine), so both name the same rule.
 */
export const valueRef = z
  .object({
    value: z.unknown().optional().meta({
      description: "Inline JSON value.",
      "x-kubernetes-preserve-unknown-fields": true,
    }),
    pickle: z
      .string()
      .max(Math.ceil((INLINE_VALUE_LIMIT_BYTES * 4) / 3) + 4)
      .regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: "must be base64" })
      .optional()
      .meta({
        description: "Inline tagged pickle, base64-encoded. Accepted only from the application's own containers.",
      }),
    list: z
      .array(
        z
          .record(z.string(), z.unknown())
          .meta({ description: "An item: a value in the same forms.", "x-kubernetes-preserve-unknown-fields": true }),
      )
      .max(100000)
      .optional()
      .meta({
        description: "A list whose items are values in these forms: a map's output, or a list that is not plain JSON.",
      }),
    call: objectName
      .optional()
      .meta({ description: "Name of a FunctionCall whose output is this value (a future passed as input)." }),
    blob: z
      .string()
      .min(1)
      .max(512)
      // '/'-separated segments that each start with a letter or digit: no absolute path, no '.'
      // or '..' segment, no empty segment (the blob store's own rule, operator/src/blobs/refs.ts).
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/, {
        message:
          "must be a blob store reference: '/'-separated segments of letters, digits, '.', '_' and '-', each starting with a letter or digit",
      })
      .optional()
      .meta({ description: "Reference to a large value in the blob store." }),
    raw: z
      .object({
        contentType: z
          .string()
          .min(1)
          .max(255)
          .regex(/^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$/, { message: "must be a MIME type" })
          .meta({ description: "MIME type of the bytes, e.g. application/pdf." }),
        data: z
          .string()
          .max(Math.ceil((INLINE_VALUE_LIMIT_BYTES * 4) / 3) + 4)
          .regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: "must be base64" })
          .meta({ description: "The bytes, base64-encoded." }),
      })
      .optional()
      .meta({
        description:
          "Bytes with a MIME type: a request input that is not JSON (an HTTP body or form part), or an application's File output.",
      }),
  })
  .refine(
    (v) =>
      ["value", "pickle", "list", "call", "blob", "raw"].filter((k) => k in v && v[k as keyof typeof v] !== undefined)
        .length === 1,
    {
      message: "exactly one of value, pickle, list, call, blob or raw must be set",
    },
  )
  .meta({
    description:
      "A value: exactly one of inline JSON, inline tagged pickle, a list of values, a FunctionCall reference, a blob reference, or raw bytes with a MIME type.",
    // CEL cannot see the untyped `value` field, so "exactly one" is said with property counts.
    minProperties: 1,
    maxProperties: 1,
  });
export type ValueRef = z.infer<typeof valueRef>;

export const retryPolicy = z
  .object({
    maxRetries: z.number().int().min(0).max(100).default(0).meta({ description: "Retries after the first attempt." }),
    initialDelaySeconds: z.number().min(0).max(3600).default(1).meta({ description: "Delay before the first retry." }),
    maxDelaySeconds: z.number().min(0).max(86400).default(60).meta({ description: "Upper bound of the retry delay." }),
    delayMultiplier: z
      .number()
      .min(1)
      .max(10)
      .default(2)
      .meta({ description: "Factor applied to the delay after each retry." }),
  })
  .meta({
    description: "Retry policy with exponential backoff. RequestError failures are never retried.",
    "x-kubernetes-validations": [
      {
        rule: "self.maxDelaySeconds >= self.initialDelaySeconds",
        message: "maxDelaySeconds must be >= initialDelaySeconds",
      },
    ],
  });
export type RetryPolicy = z.infer<typeof retryPolicy>;

// Kubernetes' quantity grammar, non-negative: a number, then a binary (Ki..Ei) or decimal
// (n, u, m, k, M..E) suffix or a decimal exponent. The looser pattern let "1.2.3" or "-1" through to
// pod creation, where the kubelet's API server refused them long after admission.
const quantity = z
  .string()
  .min(1)
  .max(64)
  .regex(/^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][-+]?[0-9]+)?$/, {
    message: "must be a non-negative Kubernetes quantity (e.g. 500m, 1Gi)",
  })
  .meta({ description: "A Kubernetes resource quantity." });

export const resources = z
  .object({
    cpu: quantity.optional().meta({ description: "CPU request and limit, e.g. 500m or 2." }),
    memory: quantity.optional().meta({ description: "Memory request and limit, e.g. 512Mi." }),
    ephemeralStorage: quantity.optional().meta({ description: "Ephemeral disk, e.g. 2Gi." }),
    gpu: z.number().int().min(0).max(16).optional().meta({ description: "Number of GPUs (nvidia.com/gpu)." }),
  })
  .meta({ description: "Resources of each function container." });

export const envVar = z
  .object({
    name: z
      .string()
      .min(1)
      .max(253)
      .regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/, { message: "must be a valid environment variable name" })
      .meta({ description: "Name of the variable." }),
    value: z.string().max(32768).meta({ description: "Value of the variable." }),
  })
  .meta({ description: "An environment variable for the function containers." });

export const condition = z
  .object({
    type: z.string().min(1).max(316).meta({ description: "Condition type, e.g. Ready." }),
    status: z.enum(["True", "False", "Unknown"]).meta({ description: "True, False or Unknown." }),
    reason: z.string().max(1024).optional().meta({ description: "CamelCase machine-readable reason." }),
    message: z.string().max(32768).optional().meta({ description: "Human-readable details." }),
    lastTransitionTime: z
      .string()
      .optional()
      .meta({ description: "When the status last changed.", format: "date-time" }),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .meta({ description: "Generation the condition was computed from." }),
  })
  .meta({ description: "A standard Kubernetes condition." });
export type Condition = z.infer<typeof condition>;

export const objectMeta = z
  .object({
    name: z.string().optional(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.number().optional(),
    resourceVersion: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    creationTimestamp: z.union([z.string(), z.date()]).optional(),
    deletionTimestamp: z.union([z.string(), z.date()]).optional(),
    ownerReferences: z.array(z.record(z.string(), z.unknown())).optional(),
    finalizers: z.array(z.string()).optional(),
  })
  .loose();
