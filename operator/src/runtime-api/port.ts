// RuntimePort: everything the runtime API needs from the operator, and nothing more. The engine
// implements it (functioncall/runtime-port.ts); main.ts hands it to buildRuntimeApi. A refusal is
// a value (`Rejection`) carrying the error code the API answers with and a message naming the
// field and the rule; the routes turn it into the error body.
import type { z } from "zod";
import type {
  ErrorCode,
  FailureKind,
  Outcome,
  ValueRef,
  childCall,
  codeLoadFailureRequest,
  heartbeatRequest,
  leaseResponse,
  progressRequest,
  registerRequest,
  registerResponse,
} from "../../../protocol/index.js";

/** The function pod a request comes from (authenticated, its labels known). */
export interface PodIdentity {
  namespace: string;
  pod: string;
  application: string;
  function: string;
}

export interface Rejection {
  rejected: true;
  code: ErrorCode;
  message: string;
}
export type Rejectable<T> = T | Rejection;

export type CodeLoadFailure = z.infer<typeof codeLoadFailureRequest>;
export type DiscoveredFunctions = z.infer<typeof registerRequest>["functions"];
export type RuntimeSettings = z.infer<typeof registerResponse>;
export type HeartbeatCalls = z.infer<typeof heartbeatRequest>["calls"];
/** The last lease answer the sidecar took (absent from older sidecars). */
export type HeartbeatLease = z.infer<typeof heartbeatRequest>["lease"];
/** A lease answer: assignments, and the epoch and seq a later heartbeat names. */
export type LeaseAnswer = Required<z.infer<typeof leaseResponse>>;
export type ProgressReport = z.infer<typeof progressRequest>;
export type ChildCall = z.infer<typeof childCall>;

export interface FailureReport {
  attempt: number;
  kind: FailureKind;
  error: { type: string; message: string; traceback?: string };
  retryable: boolean;
}

export interface RuntimePort {
  /** The answer to register: intervals and limits the sidecar follows. */
  readonly settings: RuntimeSettings;
  /** Largest blob a pod may upload. */
  readonly maxBlobBytes: number;

  register(pod: PodIdentity, functions: DiscoveredFunctions): void;
  codeLoadFailure(pod: PodIdentity, failure: CodeLoadFailure): void;
  /** Long-polls for up to `capacity` assignments; `signal` aborts when the pod hangs up. */
  lease(pod: PodIdentity, capacity: number, waitMs: number, signal?: AbortSignal): Promise<LeaseAnswer>;
  /** The calls the pod runs (as of lease answer `lease`); answers those it must abort. */
  heartbeat(pod: PodIdentity, calls: HeartbeatCalls, draining: boolean, lease?: HeartbeatLease): string[];

  reportResult(pod: PodIdentity, call: string, attempt: number, output: ValueRef): Promise<Rejection | undefined>;
  reportFailure(pod: PodIdentity, call: string, report: FailureReport): Promise<Rejection | undefined>;
  reportTail(pod: PodIdentity, call: string, attempt: number, tailCall: string): Promise<Rejection | undefined>;
  reportProgress(pod: PodIdentity, call: string, progress: ProgressReport): Rejection | undefined;
  /** Children of a running call (idempotent by name); the finished ones among those that existed. */
  createChildren(
    pod: PodIdentity,
    parent: string,
    attempt: number,
    calls: ChildCall[],
  ): Promise<Rejectable<{ finished: Outcome[] }>>;
  /** Outcomes of the finished calls among `calls` once `mode` is met or `waitMs` passed. */
  wait(pod: PodIdentity, calls: string[], mode: "any" | "all", waitMs: number): Promise<Rejectable<Outcome[]>>;

  /** The blob ref of a request state key the pod may read. */
  stateToRead(pod: PodIdentity, request: string, key: string): Rejectable<string>;
  /** The blob ref of a request state key the pod may write `body` to. */
  stateToWrite(pod: PodIdentity, request: string, key: string, body: { value?: ValueRef }): Rejectable<string>;
  /** A new blob ref for an upload, filed under the request of `call` (or of the pod's only request). */
  blobToPut(pod: PodIdentity, call: string | undefined): Rejectable<string>;
  /** `ref` when the pod may read that blob. */
  blobToGet(pod: PodIdentity, ref: string): Rejectable<string>;
}

export const isRejection = (x: unknown): x is Rejection =>
  typeof x === "object" && x !== null && (x as { rejected?: unknown }).rejected === true;
