export { DEFAULT_BODY_LIMIT, buildHttpApi, type BuildOptions } from "./server.js";
export { AUTH_CACHE_TTL_MS, KubernetesAuthorizer, allowAll, audienceMismatch } from "./auth.js";
export { CallWatch } from "./watch.js";
export { kubePodLog } from "./pod-log.js";
export { DEFAULT_FORWARDED_HEADERS } from "./headers.js";
export { DEFAULT_SSE_MAX_DURATION_MS, DEFAULT_SSE_MAX_PER_CLIENT } from "./streams.js";
export type { AccessCheck, AuthDecision, Authorizer, HttpApiDeps } from "./types.js";
