// The Kubernetes edge of the operator: what the rest of the operator imports.
export * from "./types.js";
export {
  KubeClient,
  connect,
  loadKubeConfig,
  FIELD_MANAGER,
  CLIENT_DEFAULTS,
  type KubeClientOptions,
} from "./client.js";
export {
  KubeApiError,
  isAlreadyExists,
  isConflict,
  isGone,
  isInvalid,
  isNotFound,
  isPermanent,
  isTransient,
  type KubeStatus,
  RefusalHold,
  refusalMessage,
  type WriteVerb,
} from "./errors.js";
export { KubeObjectWriter, type WriterStats } from "./writer.js";
export {
  registerResource,
  resourcePath,
  resourceInfo,
  TRELLIS_API_VERSION,
  TRELLIS_GROUP,
  TRELLIS_VERSION,
  type ResourceInfo,
} from "./resources.js";
export {
  KubeInformer,
  createInformer,
  INFORMER_DEFAULTS,
  type InformerOptions,
  type InformerStats,
} from "./informer.js";
export { type Indexers, compareResourceVersions } from "./store.js";
export { KeyedWorkQueue, WORKQUEUE_DEFAULTS, type WorkQueueHooks, type WorkQueueStats } from "./workqueue.js";
export { LeaderElector, LEADER_DEFAULTS, type LeaderElectorOptions } from "./leader.js";
export { KubeEventRecorder, EVENT_DEFAULTS, type EventRecorderStats } from "./events.js";
