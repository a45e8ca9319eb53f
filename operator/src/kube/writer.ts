// ObjectWriter over KubeClient: create, status merge patch (optionally compare-and-swap on
// resourceVersion), metadata patch, delete. Every write carries the operator's field manager and
// first passes the writer's fence (a former leader's writes fail with FencedError, unsent).
import type { KubeClient } from "./client.js";
import { FIELD_MANAGER } from "./client.js";
import { isNotFound } from "./errors.js";
import { type Fence, openFence } from "./fence.js";
import { resourcePath } from "./resources.js";
import type { KubeObject, ObjectWriter } from "./types.js";

const MERGE_PATCH = "application/merge-patch+json";

type Ref = { apiVersion: string; kind: string; namespace?: string; name?: string };
const writeName = (verb: string, r: Ref, sub = "") =>
  `${verb} ${r.kind}${sub} ${r.namespace ? `${r.namespace}/` : ""}${r.name ?? "(unnamed)"}`;

export interface WriterOptions {
  /** Consulted before every mutating request; throws (FencedError) to refuse it. Default: open. */
  fence?: Fence;
}

/** Per-request options of the calls the leader elector makes. */
export interface WriteRequestOptions {
  timeoutMs?: number;
}

export interface WriterStats {
  creates: number;
  statusPatches: number;
  metaPatches: number;
  deletes: number;
}

export class KubeObjectWriter implements ObjectWriter {
  readonly stats: WriterStats = { creates: 0, statusPatches: 0, metaPatches: 0, deletes: 0 };
  private readonly query: { fieldManager: string };
  private readonly fence: Fence;

  constructor(
    private readonly client: KubeClient,
    fieldManager: string = FIELD_MANAGER,
    opts: WriterOptions = {},
  ) {
    this.query = { fieldManager };
    this.fence = opts.fence ?? openFence;
  }

  async create<T extends KubeObject>(obj: T, opts: WriteRequestOptions = {}): Promise<T> {
    if (!obj.apiVersion || !obj.kind) {
      throw new Error(`create ${obj.metadata.name ?? "(unnamed)"}: apiVersion and kind are required`);
    }
    const ref = { apiVersion: obj.apiVersion, kind: obj.kind, namespace: obj.metadata.namespace };
    this.fence(writeName("create", { ...ref, name: obj.metadata.name }));
    this.stats.creates++;
    return this.client.request<T>("POST", resourcePath(ref), { body: obj, query: this.query, ...opts });
  }

  /**
   * JSON merge patch of `/status` (RFC 7386: objects merge, arrays and scalars replace, null
   * removes). With `ref.resourceVersion` the server rejects the write with 409 Conflict when the
   * object changed since that version.
   */
  async patchStatus<T extends KubeObject>(
    ref: { apiVersion: string; kind: string; namespace: string; name: string; resourceVersion?: string },
    status: Record<string, unknown>,
  ): Promise<T> {
    this.fence(writeName("patch", ref, "/status"));
    const body: Record<string, unknown> = { status };
    if (ref.resourceVersion) body.metadata = { resourceVersion: ref.resourceVersion };
    this.stats.statusPatches++;
    return this.client.request<T>("PATCH", resourcePath(ref, "status"), {
      body,
      contentType: MERGE_PATCH,
      query: this.query,
    });
  }

  async replaceStatus<T extends KubeObject>(
    ref: { apiVersion: string; kind: string; namespace: string; name: string; resourceVersion?: string },
    status: Record<string, unknown>,
  ): Promise<T> {
    this.fence(writeName("update", ref, "/status"));
    const ops: unknown[] = [];
    if (ref.resourceVersion) ops.push({ op: "test", path: "/metadata/resourceVersion", value: ref.resourceVersion });
    ops.push({ op: "add", path: "/status", value: status });
    this.stats.statusPatches++;
    return this.client.request<T>("PATCH", resourcePath(ref, "status"), {
      body: ops,
      contentType: "application/json-patch+json",
      query: this.query,
    });
  }

  /** Labels/annotations merge (null removes a key); `finalizers` replaces the whole list. */
  async patchMeta<T extends KubeObject>(
    ref: { apiVersion: string; kind: string; namespace: string; name: string },
    meta: {
      labels?: Record<string, string | null>;
      annotations?: Record<string, string | null>;
      finalizers?: string[];
    },
  ): Promise<T> {
    this.fence(writeName("patch metadata of", ref));
    this.stats.metaPatches++;
    return this.client.request<T>("PATCH", resourcePath(ref), {
      body: { metadata: meta },
      contentType: MERGE_PATCH,
      query: this.query,
    });
  }

  /** Deletes with the given propagation (default Background). Deleting a missing object succeeds. */
  async delete(
    ref: { apiVersion: string; kind: string; namespace: string; name: string },
    opts: { propagation?: "Background" | "Foreground" | "Orphan" } = {},
  ): Promise<void> {
    this.fence(writeName("delete", ref));
    this.stats.deletes++;
    try {
      await this.client.request("DELETE", resourcePath(ref), {
        query: { propagationPolicy: opts.propagation ?? "Background" },
      });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** Plain merge patch of the object itself (spec of a Lease, count of an Event, ...). */
  async patch<T extends KubeObject>(
    ref: { apiVersion: string; kind: string; namespace: string; name: string; resourceVersion?: string },
    patch: Record<string, unknown>,
  ): Promise<T> {
    this.fence(writeName("patch", ref));
    const body = ref.resourceVersion
      ? { ...patch, metadata: { ...((patch.metadata as object) ?? {}), resourceVersion: ref.resourceVersion } }
      : patch;
    return this.client.request<T>("PATCH", resourcePath(ref), { body, contentType: MERGE_PATCH, query: this.query });
  }

  /** Full replace (PUT); the object's metadata.resourceVersion makes it a compare-and-swap. */
  async replace<T extends KubeObject>(obj: T, opts: WriteRequestOptions = {}): Promise<T> {
    if (!obj.apiVersion || !obj.kind || !obj.metadata.name) {
      throw new Error(`replace: apiVersion, kind and metadata.name are required`);
    }
    const ref = {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      namespace: obj.metadata.namespace,
      name: obj.metadata.name,
    };
    this.fence(writeName("update", ref));
    return this.client.request<T>("PUT", resourcePath(ref), { body: obj, query: this.query, ...opts });
  }

  /** Reads are never fenced. */
  async get<T extends KubeObject>(
    ref: { apiVersion: string; kind: string; namespace?: string; name: string },
    opts: WriteRequestOptions = {},
  ): Promise<T> {
    return this.client.request<T>("GET", resourcePath(ref), opts);
  }
}
