// The runtime API sidecars talk to; messages.ts is the wire contract shared with the sidecar.
export { buildRuntimeApi, type RuntimeApiDeps, type CodeLoadFailure } from "./server.js";
export { podToken, verifyPodToken } from "./credentials.js";
export { type BlobStore, FileBlobStore, BlobTooLargeError, requestPrefix } from "./blobstore.js";
export { ERROR_STATUS, type ErrorCode } from "./errors.js";
