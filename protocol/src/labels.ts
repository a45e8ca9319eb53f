// Labels, annotations and names derived from user names: read by the operator, the CLI, the HTTP
// API and tests alike. Label values must stay valid (63 characters, alphanumeric edges).
import { createHash } from "node:crypto";

export const LABEL = {
  /** On FunctionCalls, pods and everything else of an application. */
  application: "trellis.dev/application",
  function: "trellis.dev/function",
  /** On FunctionCalls: the request (root call) they belong to. */
  request: "trellis.dev/request",
  /** On FunctionCalls: the call that made them. */
  parent: "trellis.dev/parent",
  /**
   * On FunctionCalls: a tail link its delegators have moved past (they wait on its tail now). Nothing
   * reads it again; the operator's watch leaves it out (UNSETTLED_SELECTOR), etcd keeps it.
   */
  settled: "trellis.dev/settled",
  podTemplateHash: "trellis.dev/pod-template-hash",
  codeHash: "trellis.dev/code-hash",
  sourceHash: "trellis.dev/source-hash",
  managedBy: "app.kubernetes.io/managed-by",
  partOf: "app.kubernetes.io/part-of",
  component: "app.kubernetes.io/component",
} as const;
export const MANAGED_BY = "trellis";
/** Label selector of everything this operator creates (the Pod and ConfigMap informers use it). */
export const MANAGED_SELECTOR = `${LABEL.managedBy}=${MANAGED_BY}`;
/** Label selector of the FunctionCalls the operator keeps in memory: all but settled tail links. */
export const UNSETTLED_SELECTOR = `!${LABEL.settled}`;

export const ANNOTATION = {
  /** The Python function name exactly (a label value cannot start with `_`). */
  functionName: "trellis.dev/function-name",
  /** On a request's root call: the Idempotency-Key it was invoked with. */
  idempotencyKey: "trellis.dev/idempotency-key",
  /** On such a root call: sha256 of the inputs it was invoked with (a reused key with other inputs is 422). */
  idempotencyBody: "trellis.dev/idempotency-body",
  /** On an Application deployed through Tensorlake's deploy route: the manifest it sent (JSON). */
  tensorlakeManifest: "trellis.dev/tensorlake-manifest",
  /** On such an Application: the application's Tensorlake name, when it is not the object name. */
  tensorlakeName: "trellis.dev/tensorlake-name",
} as const;

export const shortHash = (s: string, n = 10): string => createHash("sha256").update(s).digest("hex").slice(0, n);

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Kubernetes' limit on a label value. */
export const LABEL_VALUE_MAX = 63;

/**
 * The label value of a name (a call, request or application name, up to 253 characters): the name
 * itself when it is a valid label value, else its first 52 characters (edges trimmed to
 * alphanumerics) + `-` + 10 hex of its SHA-256, so distinct names keep distinct values. Every
 * writer of such a label and every reader that selects by one uses this; the full name is in the
 * object (spec.parent, spec.request, spec.application).
 */
export function labelValue(name: string): string {
  if (name.length <= LABEL_VALUE_MAX && LABEL_VALUE.test(name)) return name;
  const h = shortHash(name, 10);
  const core = name
    .slice(0, LABEL_VALUE_MAX - h.length - 1)
    .replace(/[^-A-Za-z0-9_.]/g, "-")
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "");
  return core ? `${core}-${h}` : h;
}

/**
 * Label value for a Python function name. Most names are valid as they are; names that start or
 * end with `_` get the edges trimmed and a hash appended, so distinct names stay distinct. The
 * exact name is in the `trellis.dev/function-name` annotation.
 */
export function functionLabelValue(fn: string): string {
  if (fn.length <= 63 && LABEL_VALUE.test(fn)) return fn;
  const core = fn.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, "").slice(0, 52);
  return core ? `${core}.${shortHash(fn, 8)}` : `f${shortHash(fn, 8)}`;
}

/** A DNS-label-safe stem: lowercase, `_` and `.` become `-`, no leading/trailing/double dashes. */
export function dnsStem(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");
}
