export { DEFAULT_BODY_LIMIT, buildHttpApi, type BuildOptions } from "./server.js";
export { AUTH_CACHE_TTL_MS, KubernetesAuthorizer, allowAll } from "./auth.js";
export { CallWatch } from "./watch.js";
export type { AccessCheck, AuthDecision, Authorizer, HttpApiDeps } from "./types.js";
