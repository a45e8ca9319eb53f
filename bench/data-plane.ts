// The data plane's figure (npm run bench -- --data-plane): a map of 200 items whose items return
// 1 MiB each, reduced by a function that reads every item, through the local cluster's object
// store; against a plain client that writes and reads the same bytes in the same store, in the
// same run. Both move 200 MiB up and 200 MiB down; the ratio is Trellis' MiB/s over the client's.
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { performance } from "node:perf_hooks";
import type { KubeClient } from "../operator/src/kube/client.js";
import type { KubeObjectWriter } from "../operator/src/kube/writer.js";
import { API_VERSION } from "../protocol/index.js";
import { localS3, localS3Client } from "../test/support/s3.js";
import type { BenchOperator } from "./bench-operator.js";
import { createRequest, waitFinished } from "./cluster.js";

const MiB = 1024 * 1024;

export const DATA_PLANE_SOURCE = `
from tensorlake.applications import application, function


@function()
async def chunk(i: int) -> bytes:
    return bytes([i % 256]) * ${MiB}


@function()
async def add_len(total: int, item: bytes) -> int:
    return total + len(item)


@application()
@function()
async def bytes_fanout(n: int) -> int:
    # A tail call: the reduce over the map runs after this call has finished.
    return add_len.reduce(chunk.map(list(range(n))), 0)
`;

export interface DataPlaneFigures {
  items: number;
  itemBytes: number;
  /** Request start to finish (map writes every item, reduce reads every item). */
  trellisSeconds: number;
  trellisMiBps: number;
  /** The same bytes written then read by one client, `concurrency` requests at a time. */
  clientSeconds: number;
  clientMiBps: number;
  concurrency: number;
  ratio: number;
}

/** The plain client: PUT n objects of `size` bytes, then GET them all, `concurrency` at a time. */
async function plainClient(n: number, size: number, concurrency: number): Promise<number> {
  const s3 = localS3();
  const client = localS3Client(s3);
  const prefix = `bench-plain-${process.pid}-${Date.now()}/`;
  const pool = async (fn: (i: number) => Promise<void>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < n; i = next++) await fn(i);
      }),
    );
  };
  const t0 = performance.now();
  await pool(async (i) => {
    await client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}${i}`, Body: Buffer.alloc(size, i % 256) }),
    );
  });
  await pool(async (i) => {
    const out = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}${i}` }));
    const body = Buffer.from(await out.Body!.transformToByteArray());
    if (body.length !== size) throw new Error(`plain client: object ${i} has ${body.length} bytes`);
  });
  const seconds = (performance.now() - t0) / 1000;
  for (;;) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (!keys.length) break;
    await client.send(new DeleteObjectsCommand({ Bucket: s3.bucket, Delete: { Objects: keys, Quiet: true } }));
  }
  client.destroy();
  return seconds;
}

export async function dataPlaneFigures(
  client: KubeClient,
  writer: KubeObjectWriter,
  namespace: string,
  op: BenchOperator,
  items = 200,
): Promise<DataPlaneFigures> {
  const concurrency = 4;
  await writer.create({
    apiVersion: API_VERSION,
    kind: "Application",
    metadata: { name: "bytes-fanout", namespace },
    spec: {
      entrypoint: "bytes_fanout",
      source: { inline: DATA_PLANE_SOURCE },
      // Warm containers; the chunk pods run `concurrency` items at a time, as the client does.
      functions: [
        { name: "bytes_fanout", minContainers: 1, maxContainers: 1 },
        { name: "chunk", minContainers: 2, maxContainers: 2, concurrency: concurrency / 2 },
        { name: "add_len", minContainers: 1, maxContainers: 1 },
      ],
    },
  } as never);
  // Warm-up: pods started and the code loaded, so the timed request measures the data path.
  const warm = await createRequest(client, namespace, "bytes-fanout", "bytes_fanout", [2]);
  await waitFinished(client, namespace, warm, 300_000, op.alive);
  const t0 = performance.now();
  const name = await createRequest(client, namespace, "bytes-fanout", "bytes_fanout", [items]);
  const root = await waitFinished(client, namespace, name, 600_000, op.alive);
  const trellisSeconds = (performance.now() - t0) / 1000;
  const got = (root.status?.output as { value?: unknown } | undefined)?.value;
  if (got !== items * MiB) throw new Error(`bytes_fanout returned ${JSON.stringify(got)}, not ${items * MiB}`);
  const clientSeconds = await plainClient(items, MiB, concurrency);
  const moved = (2 * items * MiB) / MiB;
  const trellisMiBps = moved / trellisSeconds;
  const clientMiBps = moved / clientSeconds;
  return {
    items,
    itemBytes: MiB,
    trellisSeconds,
    trellisMiBps,
    clientSeconds,
    clientMiBps,
    concurrency,
    ratio: trellisMiBps / clientMiBps,
  };
}

export function printDataPlaneFigures(f: DataPlaneFigures): void {
  const r = (x: number) => x.toFixed(2);
  console.log("\nData plane (object store: SeaweedFS on this machine)");
  console.log(
    `  map of ${f.items} items x ${f.itemBytes / MiB} MiB, reduced by reading each: ` +
      `${r(f.trellisSeconds)} s, ${r(f.trellisMiBps)} MiB/s (${f.items} MiB written + ${f.items} MiB read)`,
  );
  console.log(
    `  baseline, a plain S3 client moving the same bytes (${f.concurrency} at a time): ` +
      `${r(f.clientSeconds)} s, ${r(f.clientMiBps)} MiB/s`,
  );
  console.log(`  ratio Trellis / plain client: ${r(f.ratio)}`);
}
