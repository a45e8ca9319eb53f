// newRequest: the one builder of a request's root FunctionCall, used by the HTTP API, the CLI, the
// bench and the tests, so every root call carries the same labels and shape.
import { createHash, randomBytes } from "node:crypto";
import { API_VERSION } from "./api/v1alpha1/common.js";
import type { FunctionCall, FunctionCallSpec } from "./api/v1alpha1/functioncall.js";
import { ANNOTATION, LABEL, functionLabelValue, labelValue } from "./labels.js";

type Value = NonNullable<FunctionCallSpec["args"]>[number];

export interface NewRequest {
  namespace: string;
  application: string;
  /** The application's entrypoint function. */
  function: string;
  /** The request id; default: requestName(namespace, application, idempotencyKey). */
  name?: string;
  args?: Value[];
  kwargs?: Record<string, Value>;
  /** Sanitised HTTP headers of the request (RequestContext.headers). */
  headers?: Record<string, string>;
  idempotencyKey?: string;
}

/** The root FunctionCall of a new request (not yet created). */
export function newRequest(r: NewRequest): FunctionCall {
  const name = r.name ?? requestName(r.namespace, r.application, r.idempotencyKey);
  const spec: FunctionCallSpec = { application: r.application, function: r.function };
  if (r.args && r.args.length > 0) spec.args = r.args;
  if (r.kwargs && Object.keys(r.kwargs).length > 0) spec.kwargs = r.kwargs;
  if (r.headers) spec.headers = r.headers;
  return {
    apiVersion: API_VERSION,
    kind: "FunctionCall",
    metadata: {
      name,
      namespace: r.namespace,
      labels: {
        [LABEL.application]: labelValue(r.application),
        [LABEL.request]: labelValue(name),
        [LABEL.function]: functionLabelValue(r.function),
      },
      ...(r.idempotencyKey ? { annotations: { [ANNOTATION.idempotencyKey]: r.idempotencyKey.slice(0, 256) } } : {}),
    },
    spec,
  };
}

/** Longest application stem in a request id: the id is at most 40 + 1 + 12 = 53 characters. */
export const REQUEST_STEM_MAX = 40;

/**
 * A request id: `<application stem>-<12 chars>`, random, or derived from the idempotency key so
 * that a retried invoke with the same key names the same request. The stem is at most 40
 * characters whatever the application's name (a DNS subdomain up to 253), so the id is a valid
 * label value; the names of its calls are 17 characters longer (child-names.ts).
 */
export function requestName(namespace: string, application: string, idempotencyKey?: string): string {
  const stem = application.slice(0, REQUEST_STEM_MAX).replace(/[.-]+$/, "") || "r";
  const suffix = idempotencyKey
    ? "i" + createHash("sha256").update(`${namespace}/${application}/${idempotencyKey}`).digest("hex").slice(0, 11)
    : randomBytes(8).toString("hex").slice(0, 12);
  return `${stem}-${suffix}`;
}
