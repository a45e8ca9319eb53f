// Pure builders of the objects the Application controller creates: function pods, the
// content-addressed ConfigMap of inline source, and the per-pod token Secret.
import type {
  V1Container,
  V1EnvVar,
  V1PodSpec,
  V1ResourceRequirements,
  V1Toleration,
  V1TopologySpreadConstraint,
  V1Volume,
} from "@kubernetes/client-node";
import {
  ANNOTATION,
  API_VERSION,
  CONTAINER,
  functionLabelValue,
  LABEL,
  MANAGED_BY,
  POD_PATHS,
  POD_TOKEN_KEY,
  shortHash,
  SIDECAR_ENV,
} from "../../../protocol/index.js";
import { podNamePrefix, podSecretName, sourceConfigMapName } from "./names.js";
import type { ApplicationSettings, EffectiveFunctionSettings } from "./settings.js";
import type { ApplicationObject, ConfigMap, Pod, Secret } from "./types.js";

export const RUNTIME_UID = 10001;
const INLINE_SOURCE_KEY = "app.py";
const VOLUME = { run: "trellis-run", tmp: "tmp", source: "source" } as const;
/** The run volume's size limit: the socket, the SDK copy and spilled values of 1 GiB. */
export const RUN_VOLUME_SIZE = "3Gi";
const VALUES_SUBPATH = POD_PATHS.valuesDir.slice(POD_PATHS.runDir.length + 1);

type AppRef = Pick<ApplicationObject, "metadata" | "spec">;

function ownerRef(app: AppRef) {
  return {
    apiVersion: API_VERSION,
    kind: "Application",
    name: app.metadata.name ?? "",
    uid: app.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

const baseLabels = (app: AppRef, component: string): Record<string, string> => ({
  [LABEL.application]: app.metadata.name ?? "",
  [LABEL.managedBy]: MANAGED_BY,
  [LABEL.partOf]: "trellis",
  [LABEL.component]: component,
});

/** Hash of the inline source; names its ConfigMap so that a code change rolls the pods. */
export const inlineSourceHash = (inline: string): string => shortHash(inline, 10);

/** Where the code comes from: the ConfigMap to mount (if any) and the module to import. */
export function codeSource(app: AppRef): { configMap?: { name: string; key: string }; module: string } {
  const src = app.spec.source;
  if (src?.inline !== undefined) {
    const name = sourceConfigMapName(app.metadata.name ?? "", inlineSourceHash(src.inline));
    return { configMap: { name, key: INLINE_SOURCE_KEY }, module: app.spec.module ?? INLINE_SOURCE_KEY };
  }
  if (src?.configMapRef) {
    const key = src.configMapRef.key ?? INLINE_SOURCE_KEY;
    return { configMap: { name: src.configMapRef.name, key }, module: app.spec.module ?? key };
  }
  // An image without a module: the stock image convention (app.py in the working directory).
  return { module: app.spec.module ?? INLINE_SOURCE_KEY };
}

/** The ConfigMap of `spec.source.inline` (immutable: its name carries the content hash). */
export function buildSourceConfigMap(app: AppRef): ConfigMap | undefined {
  const inline = app.spec.source?.inline;
  if (inline === undefined) return undefined;
  const hash = inlineSourceHash(inline);
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: sourceConfigMapName(app.metadata.name ?? "", hash),
      namespace: app.metadata.namespace ?? "",
      labels: { ...baseLabels(app, "source"), [LABEL.sourceHash]: hash },
      ownerReferences: [ownerRef(app)],
    },
    immutable: true,
    data: { [INLINE_SOURCE_KEY]: inline },
  };
}

/** The token Secret of one pod, owned by the pod so that garbage collection removes it with it. */
export function buildPodSecret(pod: Pod, token: string): Secret {
  const name = pod.metadata.name ?? "";
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: podSecretName(name),
      namespace: pod.metadata.namespace ?? "",
      labels: {
        [LABEL.application]: pod.metadata.labels?.[LABEL.application] ?? "",
        [LABEL.function]: pod.metadata.labels?.[LABEL.function] ?? "",
        [LABEL.managedBy]: MANAGED_BY,
        [LABEL.partOf]: "trellis",
        [LABEL.component]: "pod-token",
      },
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name, uid: pod.metadata.uid ?? "" }],
    },
    type: "Opaque",
    stringData: { [POD_TOKEN_KEY]: token },
  };
}

function workerResources(r: EffectiveFunctionSettings["resources"]): V1ResourceRequirements | undefined {
  const q: Record<string, string> = {};
  if (r.cpu) q.cpu = r.cpu;
  if (r.memory) q.memory = r.memory;
  if (r.ephemeralStorage) q["ephemeral-storage"] = r.ephemeralStorage;
  if (r.gpu) q["nvidia.com/gpu"] = String(r.gpu);
  // requests = limits: a function container gets what it asked for and no more (Guaranteed QoS
  // when both cpu and memory are set).
  return Object.keys(q).length ? { requests: { ...q }, limits: { ...q } } : undefined;
}

const restricted = (readOnlyRootFilesystem: boolean) => ({
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem,
  capabilities: { drop: ["ALL"] },
});

function workerEnv(fn: EffectiveFunctionSettings, appName: string): V1EnvVar[] {
  const userEnv = fn.env;
  const userPythonPath = userEnv.find((e) => e.name === "PYTHONPATH")?.value;
  return [
    ...userEnv.filter((e) => e.name !== "PYTHONPATH"),
    // The SDK copy first, so that any Python image runs the worker the sidecar speaks to.
    {
      name: "PYTHONPATH",
      value: [POD_PATHS.sdkDir, POD_PATHS.appDir, ...(userPythonPath ? [userPythonPath] : [])].join(":"),
    },
    { name: "PYTHONUNBUFFERED", value: "1" },
    { name: "PYTHONDONTWRITEBYTECODE", value: "1" },
    ...(userEnv.some((e) => e.name === "HOME") ? [] : [{ name: "HOME", value: POD_PATHS.tmpDir }]),
    { name: SIDECAR_ENV.application, value: appName },
    { name: SIDECAR_ENV.function, value: fn.name },
  ];
}

function podVolumes(code: ReturnType<typeof codeSource>): V1Volume[] {
  const volumes: V1Volume[] = [
    // Room for spilled values (a 1 GiB File is ~1.4 GiB as base64, plus its copy going back in).
    { name: VOLUME.run, emptyDir: { sizeLimit: RUN_VOLUME_SIZE } },
    { name: VOLUME.tmp, emptyDir: { sizeLimit: "1Gi" } },
  ];
  if (code.configMap) {
    volumes.push({
      name: VOLUME.source,
      configMap: {
        name: code.configMap.name,
        items: [{ key: code.configMap.key, path: code.configMap.key }],
        defaultMode: 0o444,
      },
    });
  }
  return volumes;
}

/** The NoExecute taints the node lifecycle controller puts on a node it has lost. */
export const NODE_LOSS_TAINTS = ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] as const;

/**
 * Tolerations of a lost node for a bounded time: after it, taint-based eviction deletes the pod
 * and the controller starts a replacement elsewhere. Without them the DefaultTolerationSeconds
 * admission plugin adds 300 s, so calls on a dead node would wait five minutes.
 */
function nodeLossTolerations(app: AppRef, settings: ApplicationSettings): V1Toleration[] {
  const seconds = app.spec.nodeLossTolerationSeconds ?? settings.nodeLossTolerationSeconds;
  return NODE_LOSS_TAINTS.map((key) => ({ key, operator: "Exists", effect: "NoExecute", tolerationSeconds: seconds }));
}

/**
 * Soft spreading of one function's pods over nodes, so that losing one node loses few of them.
 * ScheduleAnyway: never leaves a pod pending. Only the hostname key: the scheduler scores a soft
 * constraint only on nodes that carry every key the pod names, so a zone key would switch the
 * spreading off on clusters whose nodes have no zone label (kind, much bare metal). Nodes of
 * different zones are different hosts, so spreading over hosts spreads over zones too.
 */
function spreadConstraints(app: AppRef, fn: EffectiveFunctionSettings): V1TopologySpreadConstraint[] {
  const matchLabels = {
    [LABEL.application]: app.metadata.name ?? "",
    [LABEL.function]: functionLabelValue(fn.name),
  };
  return [
    {
      maxSkew: 1,
      topologyKey: "kubernetes.io/hostname",
      whenUnsatisfiable: "ScheduleAnyway",
      labelSelector: { matchLabels },
    },
  ];
}

function podSpec(
  app: AppRef,
  fn: EffectiveFunctionSettings,
  settings: ApplicationSettings,
  podName: string,
): V1PodSpec {
  const code = codeSource(app);
  const appName = app.metadata.name ?? "";
  const sidecarEnv: V1EnvVar[] = [
    { name: SIDECAR_ENV.operatorUrl, value: settings.operatorUrl },
    { name: SIDECAR_ENV.podName, valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: SIDECAR_ENV.podNamespace, valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    {
      name: SIDECAR_ENV.podToken,
      valueFrom: { secretKeyRef: { name: podSecretName(podName), key: POD_TOKEN_KEY } },
    },
    { name: SIDECAR_ENV.socket, value: POD_PATHS.socket },
    { name: SIDECAR_ENV.sdkDir, value: POD_PATHS.sdkDir },
    { name: SIDECAR_ENV.application, value: appName },
    { name: SIDECAR_ENV.function, value: fn.name },
    // Absent: the sidecar takes the concurrency the worker announces (its decorator's), so
    // the pod template does not depend on the function table.
    ...(fn.specConcurrency !== undefined ? [{ name: SIDECAR_ENV.concurrency, value: String(fn.specConcurrency) }] : []),
  ];
  const runMount = { name: VOLUME.run, mountPath: POD_PATHS.runDir };
  const tmpMount = { name: VOLUME.tmp, mountPath: POD_PATHS.tmpDir };
  const sidecar: V1Container = {
    name: CONTAINER.sidecar,
    image: settings.runtimeImage,
    imagePullPolicy: settings.runtimeImagePullPolicy,
    command: ["node", POD_PATHS.sidecarEntry],
    restartPolicy: "Always", // a native sidecar: starts first, stops last
    env: sidecarEnv,
    resources: { requests: { ...settings.sidecarResources.requests }, limits: { ...settings.sidecarResources.limits } },
    volumeMounts: [runMount, tmpMount],
    // Passes once the SDK is copied and the socket is open; only then does the worker start.
    startupProbe: {
      exec: { command: ["test", "-S", POD_PATHS.socket] },
      periodSeconds: 1,
      failureThreshold: 120,
    },
    securityContext: restricted(true),
    terminationMessagePolicy: "FallbackToLogsOnError",
  };

  const image = functionImage(app, fn.name);
  const worker: V1Container = {
    name: CONTAINER.worker,
    image: image ?? settings.runtimeImage,
    command: ["python3", "-m", "trellis.worker"],
    // Flags of runtime-image/PROTOCOL.md §2; concurrency is passed so worker and sidecar agree.
    args: [
      "--socket",
      POD_PATHS.socket,
      "--module",
      code.module,
      "--function",
      fn.name,
      ...(fn.specConcurrency !== undefined ? ["--concurrency", String(fn.specConcurrency)] : []),
    ],
    workingDir: POD_PATHS.appDir,
    env: workerEnv(fn, appName),
    volumeMounts: [
      { ...runMount, readOnly: true },
      // The worker writes spilled values here; the rest of the run volume stays read-only to it.
      { name: VOLUME.run, mountPath: POD_PATHS.valuesDir, subPath: VALUES_SUBPATH },
      tmpMount,
      ...(code.configMap ? [{ name: VOLUME.source, mountPath: POD_PATHS.appDir, readOnly: true }] : []),
    ],
    securityContext: restricted(settings.workerReadOnlyRootFilesystem),
    // An import error's traceback lands in the container status, where the controller reads it.
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
  const pullPolicy = app.spec.imagePullPolicy ?? (image ? undefined : settings.runtimeImagePullPolicy);
  if (pullPolicy) worker.imagePullPolicy = pullPolicy;
  const resources = workerResources(fn.resources);
  if (resources) worker.resources = resources;
  if (fn.secrets.length) worker.envFrom = fn.secrets.map((name) => ({ secretRef: { name } }));

  return {
    initContainers: [sidecar],
    containers: [worker],
    volumes: podVolumes(code),
    restartPolicy: "Always",
    automountServiceAccountToken: false, // runtime pods hold no Kubernetes credential
    enableServiceLinks: false,
    terminationGracePeriodSeconds: settings.terminationGracePeriodSeconds,
    ...(settings.hostNetwork ? { hostNetwork: true, dnsPolicy: "ClusterFirstWithHostNet" } : {}),
    tolerations: nodeLossTolerations(app, settings),
    topologySpreadConstraints: spreadConstraints(app, fn),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUNTIME_UID,
      runAsGroup: RUNTIME_UID,
      fsGroup: RUNTIME_UID,
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
}

/** The image a function's worker runs: its own, else the Application's (undefined: the stock image). */
export function functionImage(app: AppRef, fn: string): string | undefined {
  return app.spec.functions?.find((f) => f.name === fn)?.image ?? app.spec.image;
}

/**
 * Identity of the code a pod runs (images, module, source). A function table reported by a pod
 * with the current code hash describes the current code.
 */
export function codeHash(app: AppRef, settings: Pick<ApplicationSettings, "runtimeImage">): string {
  const { image, module, source } = app.spec;
  const images = Object.fromEntries((app.spec.functions ?? []).flatMap((f) => (f.image ? [[f.name, f.image]] : [])));
  // Per-function images join the identity only when set, so existing Applications keep their hash.
  const fnImages = Object.keys(images).length ? { functionImages: images } : {};
  return shortHash(JSON.stringify({ image: image ?? settings.runtimeImage, module, source, ...fnImages }), 10);
}

/**
 * Hash of everything a pod of this function is made from except its name: pods whose label
 * differs were built from an older spec, code or operator setting and are replaced.
 */
export function podTemplateHash(app: AppRef, fn: EffectiveFunctionSettings, settings: ApplicationSettings): string {
  const spec = JSON.stringify(podSpec(app, fn, settings, ""));
  // Pods whose token came from another operator key (a reinstall) cannot authenticate: replace them.
  return shortHash(settings.credentialKeyId ? `${spec}\n${settings.credentialKeyId}` : spec, 10);
}

/**
 * One pod of one function. The name is chosen here (prefix + `suffix`) rather than by
 * generateName, because the sidecar's token Secret is referenced by name from the pod spec.
 */
export function buildFunctionPod(
  app: AppRef,
  fn: EffectiveFunctionSettings,
  settings: ApplicationSettings,
  suffix: string,
): Pod {
  const name = `${podNamePrefix(app.metadata.name ?? "", fn.name)}${suffix}`;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: app.metadata.namespace ?? "",
      labels: {
        ...baseLabels(app, "function"),
        [LABEL.function]: functionLabelValue(fn.name),
        [LABEL.podTemplateHash]: podTemplateHash(app, fn, settings),
        [LABEL.codeHash]: codeHash(app, settings),
      },
      annotations: { [ANNOTATION.functionName]: fn.name },
      ownerReferences: [ownerRef(app)],
    },
    spec: podSpec(app, fn, settings, name),
  };
}

/** Exit code of `python -m trellis.worker` when the user's code failed to load (PROTOCOL.md §2). */
export const WORKER_EXIT_CODE_LOAD_FAILED = 3;

/** The Python function a pod serves (annotation first: the label may be an encoded form). */
export const podFunction = (pod: Pod): string | undefined =>
  pod.metadata.annotations?.[ANNOTATION.functionName] ?? pod.metadata.labels?.[LABEL.function];
