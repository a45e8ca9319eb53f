// The runtime API sidecars talk to (the wire contract is in protocol/): fastify routes, per-pod
// credentials, the error catalog, and the RuntimePort the operator implements for it.
export { buildRuntimeApi, type RuntimeApiDeps } from "./server.js";
export { credentialKeyId, podToken, verifyPodToken } from "./credentials.js";
export { ERROR_STATUS, type ErrorCode } from "./errors.js";
export {
  type ChildCall,
  type CodeLoadFailure,
  type DiscoveredFunctions,
  type FailureReport,
  type HeartbeatCalls,
  type PodIdentity,
  type ProgressReport,
  type Rejectable,
  type Rejection,
  type RuntimePort,
  type RuntimeSettings,
  isRejection,
} from "./port.js";
