// The blob store the configuration names: a directory (one node) or an S3-compatible bucket.
import { mkdirSync } from "node:fs";
import { type BlobStore, FileBlobStore } from "./blobstore.js";
import type { Logger } from "../../../protocol/index.js";
import { BlobStoreUnavailableError, S3BlobStore } from "./s3-blobstore.js";

export type BlobStoreConfig =
  | { backend: "filesystem"; dir: string }
  | {
      backend: "s3";
      bucket: string;
      prefix: string;
      endpoint?: string;
      region: string;
      forcePathStyle: boolean;
    };

export interface CreatedBlobStore {
  store: BlobStore;
  /** Where the blobs are, for logs: a directory or "s3://bucket/prefix (endpoint)". */
  where: string;
  /** Resolves once the store answers; rejects with a message naming the setting when it cannot. */
  ready(): Promise<void>;
}

export function createBlobStore(cfg: BlobStoreConfig): CreatedBlobStore {
  if (cfg.backend === "filesystem") {
    return {
      store: new FileBlobStore(cfg.dir),
      where: cfg.dir,
      ready: async () => void mkdirSync(cfg.dir, { recursive: true }),
    };
  }
  const store = new S3BlobStore(cfg);
  return {
    store,
    where: `s3://${cfg.bucket}/${cfg.prefix}${cfg.endpoint ? ` (${cfg.endpoint})` : ""}`,
    ready: () => store.check(),
  };
}

/**
 * Waits until the store answers: a connection that is not there yet (the store starting beside
 * the operator) is retried with backoff; a missing bucket or refused credentials is not, and
 * fails with the message that names the setting.
 */
export async function waitForBlobStore(
  s: CreatedBlobStore,
  log: Pick<Logger, "info" | "warn">,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await s.ready();
      log.info("blob store ready", { where: s.where });
      return;
    } catch (err) {
      if (err instanceof BlobStoreUnavailableError && err.permanent) throw err;
      const ms = Math.min(30_000, 500 * 2 ** attempt);
      log.warn("blob store not answering yet: retrying", { where: s.where, retryInMs: ms, err: String(err) });
      await sleep(ms);
    }
  }
}
