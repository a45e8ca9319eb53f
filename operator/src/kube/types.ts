// Contracts of the Kubernetes edge of the operator. Everything above this layer (decisions,
// dispatcher, runtime API) depends on these interfaces only, so it is testable without a server.

/** Objects as the watch layer keeps them: plain JSON with metadata. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: {
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller?: boolean;
      blockOwnerDeletion?: boolean;
    }[];
    creationTimestamp?: string | Date;
    deletionTimestamp?: string | Date;
    finalizers?: string[];
  };
}

/** "namespace/name": the only thing a reconcile receives (level-based, never the event). */
export type ObjectKey = string;
export const keyOf = (o: { metadata: { namespace?: string; name?: string } }): ObjectKey =>
  `${o.metadata.namespace ?? ""}/${o.metadata.name ?? ""}`;
export const splitKey = (k: ObjectKey): { namespace: string; name: string } => {
  const i = k.indexOf("/");
  return { namespace: k.slice(0, i), name: k.slice(i + 1) };
};

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

/** A read-only cache kept current by list+watch. */
export interface Cache<T extends KubeObject> {
  get(key: ObjectKey): T | undefined;
  list(namespace?: string): T[];
  /** Objects whose index `indexName` yields `value` (indexes are declared when the informer is made). */
  byIndex(indexName: string, value: string): T[];
  /** True once the first list has been loaded. */
  synced(): boolean;
}

export interface Informer<T extends KubeObject> extends Cache<T> {
  /** Called after the cache changed; `old` is the previous version for MODIFIED/DELETED. */
  onEvent(handler: (type: WatchEventType, obj: T, old: T | undefined) => void): void;
  start(): Promise<void>; // resolves after the first list
  stop(): void;
}

/** Result of one reconcile: requeue after a delay, or nothing. Throwing means retry with backoff. */
export interface ReconcileResult {
  requeueAfterMs?: number;
}
export type Reconciler = (key: ObjectKey) => Promise<ReconcileResult | void>;

export interface WorkQueue {
  /** Queue the key now (deduplicated while waiting; re-queued once if added while running). */
  add(key: ObjectKey): void;
  addAfter(key: ObjectKey, delayMs: number): void;
  /** Start `workers` loops calling the reconciler; errors back off exponentially per key. */
  run(reconciler: Reconciler, workers: number): void;
  shutdown(): Promise<void>;
  length(): number;
}

/** Writes to the API server. The operator is the only writer of FunctionCall status. */
export interface ObjectWriter {
  create<T extends KubeObject>(obj: T): Promise<T>;
  /** JSON merge patch of the status subresource; `resourceVersion` makes it a compare-and-swap. */
  patchStatus<T extends KubeObject>(
    ref: { apiVersion: string; kind: string; namespace: string; name: string; resourceVersion?: string },
    status: Record<string, unknown>,
  ): Promise<T>;
  /**
   * Replaces the whole status (JSON patch `add /status`). Unlike a merge patch it keeps `null`
   * inside values, so a function's JSON output such as {"trace": null} survives as written.
   */
  replaceStatus<T extends KubeObject>(
    ref: { apiVersion: string; kind: string; namespace: string; name: string; resourceVersion?: string },
    status: Record<string, unknown>,
  ): Promise<T>;
  patchMeta<T extends KubeObject>(
    ref: { apiVersion: string; kind: string; namespace: string; name: string },
    meta: {
      labels?: Record<string, string | null>;
      annotations?: Record<string, string | null>;
      finalizers?: string[];
    },
  ): Promise<T>;
  delete(
    ref: { apiVersion: string; kind: string; namespace: string; name: string },
    opts?: { propagation?: "Background" | "Foreground" | "Orphan" },
  ): Promise<void>;
}

export interface EventRecorder {
  /** A Kubernetes Event on `obj`; repeated events with the same reason+message are aggregated (count). */
  record(obj: KubeObject, type: "Normal" | "Warning", reason: string, message: string): void;
}

export interface Clock {
  now(): number; // ms since epoch
}
