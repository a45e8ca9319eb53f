// Labels, names and the pod ↔ sidecar contract (paths and environment variables). The sidecar
// reads the same names; keep both sides in step.
import { createHash } from "node:crypto";

export const LABEL = {
  application: "trellis.dev/application",
  function: "trellis.dev/function",
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

export const ANNOTATION = {
  /** The Python function name exactly (a label value cannot start with `_`). */
  functionName: "trellis.dev/function-name",
} as const;

/** Inside every function pod. */
export const POD_PATHS = {
  /** emptyDir shared by sidecar and worker: the socket and the SDK copy. */
  runDir: "/run/trellis",
  socket: "/run/trellis/worker.sock",
  /** The sidecar copies the Python SDK here before it opens the socket. */
  sdkDir: "/run/trellis/python",
  /** User code (inline source or a ConfigMap), read-only. */
  appDir: "/app",
  tmpDir: "/tmp",
  sidecarEntry: "/opt/trellis/sidecar/sidecar.mjs",
} as const;

/** Environment of the sidecar container. */
export const SIDECAR_ENV = {
  operatorUrl: "TRELLIS_OPERATOR_URL",
  podName: "TRELLIS_POD_NAME",
  podNamespace: "TRELLIS_POD_NAMESPACE",
  podToken: "TRELLIS_POD_TOKEN",
  socket: "TRELLIS_SOCKET",
  sdkDir: "TRELLIS_SDK_DIR",
  application: "TRELLIS_APPLICATION",
  function: "TRELLIS_FUNCTION",
  concurrency: "TRELLIS_CONCURRENCY",
} as const;

/** Key of the token in the per-pod Secret. */
export const POD_TOKEN_KEY = "token";

export const CONTAINER = { sidecar: "sidecar", worker: "worker" } as const;

export const shortHash = (s: string, n = 10): string => createHash("sha256").update(s).digest("hex").slice(0, n);

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

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

/** Length of the random part of pod names (as the apiserver's generateName). */
export const POD_SUFFIX_LENGTH = 5;
const SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";
export function randomPodSuffix(random: () => number = Math.random): string {
  let s = "";
  for (let i = 0; i < POD_SUFFIX_LENGTH; i++) s += SUFFIX_ALPHABET[Math.floor(random() * SUFFIX_ALPHABET.length)];
  return s;
}

/**
 * `<app>-<fn>-` cut so that the whole pod name (with its suffix) stays a 63-character DNS label;
 * the function label, not the name, says which function a pod serves.
 */
export function podNamePrefix(app: string, fn: string): string {
  const max = 63 - POD_SUFFIX_LENGTH - 1;
  const a = dnsStem(app) || "app";
  const f = dnsStem(fn) || "fn";
  let stem = `${a}-${f}`;
  if (stem.length > max) {
    // Keep some of both; a short hash keeps long distinct pairs apart.
    const h = shortHash(`${app}/${fn}`, 6);
    const room = max - h.length - 2;
    const fa = Math.min(a.length, Math.max(Math.ceil(room / 2), room - f.length));
    stem = `${a.slice(0, fa).replace(/-$/, "")}-${f.slice(0, room - fa).replace(/-$/, "")}-${h}`;
  }
  return `${stem}-`;
}

/** Name of the content-addressed ConfigMap holding an Application's inline source. */
export function sourceConfigMapName(app: string, sourceHash: string): string {
  return `${app.slice(0, 253 - 8 - sourceHash.length)}-source-${sourceHash}`;
}

/** Name of the per-pod token Secret. */
export const podSecretName = (pod: string): string => `${pod}-token`;
