// The pod <-> sidecar contract: paths inside every function pod and the sidecar's environment,
// written by the operator's pod builder and read by the sidecar.

/** Inside every function pod. */
export const POD_PATHS = {
  /** emptyDir shared by sidecar and worker: the socket and the SDK copy. */
  runDir: "/run/trellis",
  socket: "/run/trellis/worker.sock",
  /** The sidecar copies the Python SDK here before it opens the socket. */
  sdkDir: "/run/trellis/python",
  /** Spilled values (runtime-image/PROTOCOL.md §4): the one directory of the run volume the worker writes. */
  valuesDir: "/run/trellis/values",
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

/**
 * The per-pod token Secret is named `<pod name>` + this suffix. Distinctive (a dot cannot occur in
 * a pod name made by the operator), so the admission policy and the operator refuse Applications
 * that name such a Secret in `secrets` without catching users' own Secrets.
 */
export const POD_TOKEN_SECRET_SUFFIX = ".trellis-pod-token";
export const podTokenSecretName = (pod: string): string => `${pod}${POD_TOKEN_SECRET_SUFFIX}`;
export const isPodTokenSecretName = (name: string): boolean => name.endsWith(POD_TOKEN_SECRET_SUFFIX);

export const CONTAINER = { sidecar: "sidecar", worker: "worker" } as const;
