// In-memory fakes of the HTTP API's dependencies (types.ts), for its unit tests.
import { Readable } from "node:stream";
import { silentLogger } from "../../../protocol/index.js";
import { BlobTooLargeError } from "../blobs/index.js";
import { KubeApiError } from "../kube/errors.js";
import { allowAll } from "./auth.js";
import type { ApplicationObj, Authorizer, CallObject, HttpApiDeps } from "./types.js";
import { CallWatch } from "./watch.js";

export class MapCache<T extends { metadata: { namespace?: string; name?: string } }> {
  readonly m = new Map<string, T>();
  get = (k: string) => this.m.get(k);
  list = (ns?: string) => [...this.m.values()].filter((o) => ns === undefined || o.metadata.namespace === ns);
  byIndex = () => [] as T[];
  synced = () => true;
  put(o: T) {
    this.m.set(`${o.metadata.namespace}/${o.metadata.name}`, o);
  }
}

/** A blob store in a Map: puts take bytes or streams (all or nothing, as the real stores). */
export function mapBlobs(blobs = new Map<string, Buffer>()): HttpApiDeps["blobs"] {
  return {
    read: async (r) => blobs.get(r),
    get: async (r) => {
      const b = blobs.get(r);
      return b && { size: b.length, stream: Readable.from([b]) };
    },
    put: async (r, d, maxBytes = Infinity) => {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of d instanceof Uint8Array ? [d] : d) {
        size += c.length;
        if (size > maxBytes) throw new BlobTooLargeError(maxBytes);
        chunks.push(Buffer.from(c));
      }
      blobs.set(r, Buffer.concat(chunks));
      return size;
    },
    delete: async (r) => void blobs.delete(r),
  };
}

/** The world's `bodyLimit`, when given, limits Files too (maxFileBytes), as one "body limit" of old. */
export function world(authorizer: Authorizer = allowAll, bodyLimit?: number) {
  const calls = new MapCache<CallObject>();
  const apps = new MapCache<ApplicationObj>();
  const blobs = new Map<string, Buffer>();
  const watch = new CallWatch();
  const deleted: string[] = [];
  /** Worker logs by "namespace/pod" (a string, or a container not started yet); a pod not here is gone. */
  const podLogs = new Map<string, string | { waiting: string }>();
  const logReads: { namespace: string; pod: string; tailLines: number; limitBytes: number }[] = [];
  apps.put({
    apiVersion: "trellis.dev/v1alpha1",
    kind: "Application",
    metadata: { name: "greet", namespace: "team", creationTimestamp: "2026-01-01T00:00:00Z" },
    spec: { entrypoint: "hello", source: { inline: "x" } },
    status: {
      conditions: [{ type: "Ready", status: "True" } as never],
      discovered: [{ name: "hello" }, { name: "shout" }],
    },
  } as ApplicationObj);
  let clock = 0;
  const deps: HttpApiDeps = {
    calls,
    applications: apps,
    watchCall: watch.watch,
    watchRequest: watch.watchRequest,
    createCall: async (c) => {
      const key = `${c.metadata.namespace}/${c.metadata.name}`;
      if (calls.get(key)) throw new KubeApiError(409, "AlreadyExists", "exists", "POST", "/x");
      const made = { ...c, metadata: { ...c.metadata, creationTimestamp: new Date(++clock * 1000).toISOString() } };
      calls.put(made);
      return made;
    },
    getCall: async (ns, name) => calls.get(`${ns}/${name}`),
    deleteCall: async (ns, name) => {
      deleted.push(`${ns}/${name}`);
      calls.m.delete(`${ns}/${name}`);
    },
    blobs: mapBlobs(blobs),
    podLog: async (namespace, pod, opts) => {
      logReads.push({ namespace, pod, ...opts });
      const l = podLogs.get(`${namespace}/${pod}`);
      return l === undefined ? { gone: true } : typeof l === "string" ? { text: l } : l;
    },
    authorizer,
    log: silentLogger,
    ...(bodyLimit ? { bodyLimit, maxFileBytes: bodyLimit } : {}),
  };
  /** Moves a call's status forward, as the operator would, and tells the watchers. */
  const update = (name: string, status: CallObject["status"]) => {
    const c = calls.get(`team/${name}`)!;
    const next = { ...c, status: { ...c.status, ...status } };
    calls.put(next);
    watch.onEvent("MODIFIED", next);
  };
  return { deps, calls, apps, blobs, deleted, update, podLogs, logReads };
}
