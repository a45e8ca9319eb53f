// The narrow dependencies of the HTTP invoke API, so that it is testable with in-memory fakes.
import type { Application, FunctionCall, Logger } from "../../../protocol/index.js";
import type { BlobStore } from "../blobs/index.js";
import type { Cache, KubeObject } from "../kube/index.js";
import type { DeployStore } from "./deploy-store.js";

export type CallObject = FunctionCall & KubeObject;
export type ApplicationObj = Application & KubeObject;

/** The verbs the API asks Kubernetes RBAC about. */
export type Verb = "create" | "get" | "list" | "delete" | "update" | "patch";

export interface AccessCheck {
  namespace: string;
  verb: Verb;
  /** configmaps and pods/log (a subresource) are core (group ""); the others trellis.dev. */
  resource: "functioncalls" | "applications" | "configmaps" | "pods/log";
}

export type AuthDecision = { allowed: true; user: string } | { allowed: false; status: 401 | 403; message: string };

export interface Authorizer {
  /** Decides whether the bearer token (undefined when absent) may do `check`. */
  authorize(token: string | undefined, check: AccessCheck): Promise<AuthDecision>;
}

export interface HttpApiDeps {
  calls: Cache<CallObject>;
  applications: Cache<ApplicationObj>;
  /** Calls `fn` after the cached FunctionCall "ns/name" changed or went away; returns an unsubscribe. */
  watchCall(key: string, fn: (call: CallObject | undefined) => void): () => void;
  /** Calls `fn` after any call of the request "ns/root" changed; absent: only the root is watched. */
  watchRequest?(key: string, fn: () => void): () => void;
  /** Creates the root FunctionCall; rejects with a KubeApiError (409 AlreadyExists, 422 Invalid, ...). */
  createCall(call: CallObject): Promise<CallObject>;
  /** Reads one FunctionCall from the API server (for a just-created call the cache has not seen). */
  getCall(namespace: string, name: string): Promise<CallObject | undefined>;
  deleteCall(namespace: string, name: string): Promise<void>;
  /**
   * The `worker` container's log of a pod: its last `tailLines` lines, at most `limitBytes`; `gone`
   * when the pod no longer exists, `waiting` (the API server's message) while the container has
   * not started (or the kubelet has not reported it yet). Absent: the logs route answers 503.
   */
  podLog?(
    namespace: string,
    pod: string,
    opts: { tailLines: number; limitBytes: number },
  ): Promise<{ text: string } | { gone: true } | { waiting: string }>;
  /** Writes of the deploy routes (POST/DELETE …/applications); absent: they answer 503. */
  deploy?: DeployStore;
  /** Large inputs are put (Files streamed), outputs read (a File's streamed), and a refused request's inputs deleted. */
  blobs: Pick<BlobStore, "read" | "get" | "put" | "delete">;
  authorizer: Authorizer;
  log: Logger;
  /** Largest request body in bytes (413 past it); of a form: its fields, JSON parts and small files together. */
  bodyLimit?: number;
  /** Largest File in bytes (a raw body or a multipart file part, streamed to the blob store; 413 past it). */
  maxFileBytes?: number;
  /** False while the v1 routes cannot answer (a passive replica, caches not synced): they answer 503. */
  serving?: () => boolean;
  /** Readiness for /readyz; /healthz always answers. */
  readiness?: () => { ok: boolean; [k: string]: unknown };
  /** Interval of SSE keep-alive comments. */
  sseKeepAliveMs?: number;
  /** SSE caps (streams.ts): concurrent streams per client and the longest stream. */
  sse?: { maxPerClient?: number; maxDurationMs?: number };
  /** Request headers forwarded into spec.headers: names and `prefix*` (headers.ts; credentials never). */
  forwardHeaders?: readonly string[];
  now?: () => number;
}
