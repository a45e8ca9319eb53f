// The I/O half of an informer: paged list and a streaming watch of one resource, as a small
// interface (ListWatch) that the informer loop drives. Tests drive the loop with a scripted one.
import type { KubeClient } from "./client.js";
import { KubeApiError, type KubeStatus } from "./errors.js";
import { resourcePath } from "./resources.js";
import type { KubeObject } from "./types.js";

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export type RawWatchEvent<T> =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: T }
  | { type: "BOOKMARK"; object: { metadata: { resourceVersion?: string } } }
  | { type: "ERROR"; object: KubeStatus };

export interface ListWatch<T> {
  /**
   * The whole list, each item passed through `each` as its page arrives: a cache that hands back
   * the object it already holds (same version) lets the page's copy go at once, so a relist of a
   * large namespace never holds the cache and the list side by side.
   */
  list(signal: AbortSignal, each?: (obj: T) => T): Promise<ListResult<T>>;
  /** Streams events from `resourceVersion` until the server ends the stream (resolves) or it fails (rejects). */
  watch(resourceVersion: string, signal: AbortSignal, onEvent: (e: RawWatchEvent<T>) => void): Promise<void>;
}

export interface KubeListWatchOptions {
  apiVersion: string;
  kind: string;
  /** Omit for all namespaces. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  pageSize?: number;
  /** Server-side watch timeout; a jitter spreads many watches' restarts. */
  watchTimeoutSeconds?: () => number;
}

interface ListBody<T> {
  items: T[];
  metadata: { resourceVersion: string; continue?: string };
}

export function kubeListWatch<T extends KubeObject>(client: KubeClient, o: KubeListWatchOptions): ListWatch<T> {
  const path = resourcePath({ apiVersion: o.apiVersion, kind: o.kind, namespace: o.namespace });
  const selectors = { labelSelector: o.labelSelector, fieldSelector: o.fieldSelector };
  const stamp = (obj: T): T => {
    // Lists of built-in kinds omit apiVersion/kind on items; events and recorders need them.
    obj.apiVersion ??= o.apiVersion;
    obj.kind ??= o.kind;
    return obj;
  };
  const timeout = o.watchTimeoutSeconds ?? (() => 300 + Math.floor(Math.random() * 300));

  return {
    async list(signal, each = (obj: T) => obj) {
      const items: T[] = [];
      let cont: string | undefined;
      let paged = true;
      for (;;) {
        let page: ListBody<T>;
        try {
          page = await client.request<ListBody<T>>("GET", path, {
            query: { ...selectors, limit: paged ? (o.pageSize ?? 500) : undefined, continue: cont },
            signal,
          });
        } catch (e) {
          // An expired continue token: take the whole list in one request instead.
          if (cont && e instanceof KubeApiError && e.statusCode === 410) {
            items.length = 0;
            cont = undefined;
            paged = false;
            continue;
          }
          throw e;
        }
        for (const it of page.items ?? []) items.push(each(stamp(it)));
        cont = page.metadata.continue || undefined;
        if (!cont) return { items, resourceVersion: page.metadata.resourceVersion };
      }
    },

    async watch(resourceVersion, signal, onEvent) {
      const res = await client.stream(
        path,
        { ...selectors, watch: 1, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: timeout() },
        signal,
      );
      await new Promise<void>((resolve, reject) => {
        let buf = "";
        let failed = false;
        const fail = (e: unknown) => {
          if (failed) return;
          failed = true;
          res.destroy();
          reject(e);
        };
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buf += chunk;
          let nl: number;
          while (!failed && (nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (!line.trim()) continue;
            let ev: RawWatchEvent<T>;
            try {
              ev = JSON.parse(line) as RawWatchEvent<T>;
            } catch {
              return fail(new Error(`watch ${path}: undecodable line: ${line.slice(0, 200)}`));
            }
            if (ev.type === "ADDED" || ev.type === "MODIFIED" || ev.type === "DELETED") stamp(ev.object);
            try {
              onEvent(ev);
            } catch (e) {
              return fail(e);
            }
          }
        });
        res.on("error", fail);
        res.on("aborted", () => fail(new Error(`watch ${path}: connection aborted`)));
        res.on("end", () => (failed ? undefined : resolve()));
        res.on("close", () => (failed ? undefined : resolve()));
      });
    },
  };
}
