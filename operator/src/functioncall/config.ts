// Operator-level settings of the FunctionCall engine. main.ts parses them (zod) and passes them
// down; every field has a default so tests name only what they exercise.
import { z } from "zod";
import { INLINE_VALUE_LIMIT_BYTES } from "../../../protocol/index.js";

export const engineConfig = z.object({
  /** Timeout of one attempt when neither the call, the Application nor the decorator sets one. */
  defaultTimeoutSeconds: z.number().int().min(1).default(300),
  /** The operator fails an attempt at startTime + timeout + this (the sidecar normally aborts first). */
  timeoutGraceMs: z.number().int().min(0).default(15_000),
  /**
   * After it takes over, the operator times out no attempt for this long: pods report what
   * finished (or what their sidecar stopped at its timeout) while no operator could take it.
   * As long as a silent pod takes to be judged lost (heartbeatTimeoutMs).
   */
  takeoverGraceMs: z.number().int().min(0).default(30_000),
  /** A pod silent this long has lost its running calls. */
  heartbeatTimeoutMs: z.number().int().min(1).default(30_000),
  /** What sidecars are told at register. */
  heartbeatIntervalMs: z.number().int().min(1).default(5_000),
  leaseWaitMs: z.number().int().min(1).default(20_000),
  /** Attempts lost to infrastructure that are re-run without spending user retries. */
  infrastructureRetries: z.number().int().min(0).default(3),
  /**
   * Attempts lost to disruptions (the pod deleted, evicted or silent: not the call's doing) are
   * re-run without spending either budget, as a Job's pod failure policy ignores DisruptionTarget;
   * this ceiling only stops a call from being re-run forever.
   */
  disruptionRetries: z.number().int().min(0).default(100),
  inlineValueLimitBytes: z.number().int().min(1).default(INLINE_VALUE_LIMIT_BYTES),
  /**
   * Largest blob accepted from a pod: 5 GiB, what one S3 PUT (a presigned upload) may hold. A
   * blob holds a value's document, so a File's bytes are base64 in it: Files up to 3.75 GiB.
   */
  maxBlobBytes: z
    .number()
    .int()
    .min(1)
    .default(5 * 1024 * 1024 * 1024),
  /** Largest FunctionCall spec (etcd keeps objects under 1.5 MiB). */
  maxCallSpecBytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /**
   * Blocked/Queued are written only when a call stays in them this long: the common path is
   * create → Running → Succeeded (three writes).
   */
  waitingPhaseWriteAfterMs: z.number().int().min(0).default(1_000),
  /** Requests of applications that set no ttlSecondsAfterFinished are deleted this long after they finish. */
  defaultRequestTtlSeconds: z.number().int().min(0).optional(),
  /**
   * A map of at least this many items keeps them in shard FunctionCalls (SHARD_MAX_ITEMS each,
   * their states group-committed) instead of one object per item.
   */
  shardMinItems: z.number().int().min(1).default(64),
  /** How long a shard's item changes gather before their one status write. */
  shardCommitMs: z.number().int().min(0).default(10),
  /** Throttle of progress status writes per call. */
  progressWriteIntervalMs: z.number().int().min(0).default(1_000),
});
export type EngineConfig = z.infer<typeof engineConfig>;
export const defaultEngineConfig = (over: z.input<typeof engineConfig> = {}): EngineConfig => engineConfig.parse(over);
