// The local cluster's object store (SeaweedFS, started by cluster:up): its endpoint, bucket and
// keys as up.sh wrote them to $TRELLIS_RUN_DIR/s3.env (or TRELLIS_S3_* in the environment).
import { S3Client } from "@aws-sdk/client-s3";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { homedir } from "node:os";

export interface LocalS3 {
  endpoint: string;
  /** The endpoint as function pods reach it (the node's side of the bridge). */
  podEndpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

function runDir(): string {
  const cluster = process.env.TRELLIS_CLUSTER_DIR ?? join(homedir(), ".local/state/trellis/cluster");
  return process.env.TRELLIS_RUN_DIR ?? join(cluster, "run");
}

function readEnvFile(path: string): Record<string, string> {
  try {
    const out: Record<string, string> = {};
    for (const line of readFileSync(path, "utf8").split("\n")) {
      const m = /^(?:export )?([A-Z0-9_]+)=["']?(.*?)["']?$/.exec(line.trim());
      if (m) out[m[1]!] = m[2]!;
    }
    return out;
  } catch {
    return {};
  }
}

export function localS3(): LocalS3 {
  const file = readEnvFile(join(runDir(), "s3.env"));
  const get = (k: string) => process.env[k] ?? file[k];
  const endpoint = get("TRELLIS_S3_ENDPOINT");
  if (!endpoint)
    throw new Error(`no local object store: run npm run cluster:up (it writes ${join(runDir(), "s3.env")})`);
  return {
    endpoint,
    podEndpoint: get("TRELLIS_S3_POD_ENDPOINT") ?? endpoint,
    bucket: get("TRELLIS_S3_BUCKET") ?? "trellis",
    region: get("TRELLIS_S3_REGION") ?? "us-east-1",
    accessKeyId: get("AWS_ACCESS_KEY_ID") ?? "",
    secretAccessKey: get("AWS_SECRET_ACCESS_KEY") ?? "",
  };
}

/** Operator env for the local object store, blobs under `prefix` ("" or ending in "/"). */
export function s3OperatorEnv(prefix: string): Record<string, string> {
  const s3 = localS3();
  return {
    TRELLIS_BLOB_BACKEND: "s3",
    TRELLIS_S3_ENDPOINT: s3.endpoint,
    TRELLIS_S3_BUCKET: s3.bucket,
    TRELLIS_S3_REGION: s3.region,
    TRELLIS_S3_PREFIX: prefix,
    TRELLIS_S3_FORCE_PATH_STYLE: "true",
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  };
}

export const S3_SECRET = "trellis-s3-credentials";

/** Chart values for the local object store (the keys in Secret S3_SECRET: ensureS3Secret). */
export function s3ChartValues(prefix: string): Record<string, string | boolean> {
  const s3 = localS3();
  return {
    "blobs.backend": "s3",
    "blobs.s3.bucket": s3.bucket,
    "blobs.s3.endpoint": s3.endpoint,
    "blobs.s3.region": s3.region,
    "blobs.s3.prefix": prefix,
    "blobs.s3.forcePathStyle": true,
    "blobs.s3.credentialsSecret": S3_SECRET,
  };
}

/** The Secret the chart reads the local object store's keys from, in `namespace`. */
export function s3SecretManifest(namespace: string): string {
  const s3 = localS3();
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: S3_SECRET, namespace },
    stringData: { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey },
  });
}

/** Creates (or updates) the Secret S3_SECRET in `namespace` with the local object store's keys. */
export async function ensureS3Secret(namespace: string): Promise<void> {
  const { kubectl } = await import("./kube.js");
  await kubectl(["apply", "-f", "-"], s3SecretManifest(namespace));
}

/** An S3 client of the local object store, with the cluster's keys. */
export function localS3Client(s3: LocalS3 = localS3()): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    // As the operator's store: checksums only where S3 requires them.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
}
