// The blob store: large values, uploads and request state, never in etcd. Refs are filed under
// their request ("<namespace>/<request>/…") so that a request's blobs go with it.
export { type BlobStore, BlobTooLargeError, FileBlobStore } from "./blobstore.js";
export { BlobStoreUnavailableError, S3BlobStore, type S3BlobStoreOptions } from "./s3-blobstore.js";
export { type BlobStoreConfig, type CreatedBlobStore, createBlobStore, waitForBlobStore } from "./create.js";
export { BlobSweeper, decideSweep, type SweepHooks, type SweepState } from "./sweep.js";
export { checkRef, inNamespace, newBlobRef, requestOfRef, requestPrefix, stateRef } from "./refs.js";
export {
  type BadRef,
  BlobRefError,
  checkValueRefs,
  REF_LIMITS,
  type RefLimits,
  type RefRule,
  type RefScope,
  RefTrail,
  refOutsideScope,
  scopeOfRef,
} from "./check.js";
