// The local cluster's object store (SeaweedFS, started by cluster:up): its endpoint, bucket and
// keys as up.sh wrote them to $TRELLIS_RUN_DIR/s3.env (or TRELLIS_S3_* in the environment).
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
