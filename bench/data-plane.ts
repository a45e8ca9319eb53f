// The data plane's figure (npm run bench -- --data-plane): a map of 200 items whose items return
// 1 MiB each, reduced by a function that reads every item, through the local cluster's object
// store; against a plain client that writes and reads the same bytes in the same store, in the
// same run. Both move 200 MiB up and 200 MiB down; the ratio is Trellis' MiB/s over the client's.
// Then a 1 GiB File streamed in through the HTTP API, into a function and back out, with the
// operator's RSS sampled meanwhile, against a plain client putting and getting the same bytes.
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Readable } from "node:stream";
import { metricsPortFor } from "../test/support/helm.js";
import { serviceAccountToken } from "../test/support/kube.js";
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

/** An Application `name` (entrypoint: the name with underscores) of inline `source`. */
function createApplication(
  writer: KubeObjectWriter,
  namespace: string,
  name: string,
  source: string,
  functions: Record<string, unknown>[],
): Promise<unknown> {
  return writer.create({
    apiVersion: API_VERSION,
    kind: "Application",
    metadata: { name, namespace },
    spec: { entrypoint: name.replaceAll("-", "_"), source: { inline: source }, functions },
  } as never);
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
  // Warm containers; the chunk pods run `concurrency` items at a time, as the client does.
  await createApplication(writer, namespace, "bytes-fanout", DATA_PLANE_SOURCE, [
    { name: "bytes_fanout", minContainers: 1, maxContainers: 1 },
    { name: "chunk", minContainers: 2, maxContainers: 2, concurrency: concurrency / 2 },
    { name: "add_len", minContainers: 1, maxContainers: 1 },
  ]);
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

export const FILE_SOURCE = `
from tensorlake.applications import File, application, function


@application()
@function()
def file_echo(doc: File) -> File:
    return File(content=doc.content, content_type="application/x-echoed")
`;

export interface BigFileFigures {
  bytes: number;
  /** POST (streamed) to the output fully read back (streamed). */
  trellisSeconds: number;
  /** PUT then GET of the same bytes by a plain S3 client. */
  clientSeconds: number;
  operatorIdleMiB: number;
  operatorPeakMiB: number;
}

/** A deterministic stream of `total` bytes in 1 MiB chunks, hashed as it is produced. */
function* pattern(total: number, hash: ReturnType<typeof createHash>) {
  const block = Buffer.alloc(MiB);
  for (let sent = 0, i = 0; sent < total; sent += MiB, i++) {
    block.fill(i % 251);
    block.writeUInt32BE(i, 0);
    const chunk = Buffer.from(block.subarray(0, Math.min(MiB, total - sent)));
    hash.update(chunk);
    yield chunk;
  }
}

async function drainHash(body: AsyncIterable<Uint8Array>): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { size, sha256: hash.digest("hex") };
}

export async function bigFileFigures(
  writer: KubeObjectWriter,
  namespace: string,
  httpPort: number,
  bytes = 1024 * MiB,
): Promise<BigFileFigures> {
  // The File's bytes, the decoded copy and the base64 chunks of the output fit.
  await createApplication(writer, namespace, "file-echo", FILE_SOURCE, [
    { name: "file_echo", minContainers: 1, maxContainers: 1, resources: { memory: "4Gi" } },
  ]);
  const token = await serviceAccountToken(namespace, "bench-file", [
    { verbs: "create,get,list", resource: "functioncalls.trellis.dev" },
  ]);
  const base = `http://127.0.0.1:${httpPort}/v1/namespaces/${namespace}/applications/file-echo`;
  const auth = { authorization: `Bearer ${token}` };
  const metrics = `http://127.0.0.1:${metricsPortFor(httpPort)}/metrics`;
  const rss = async () =>
    Number(/^trellis_process_resident_memory_bytes (\d+)/m.exec(await (await fetch(metrics)).text())?.[1]) / MiB;
  const run = async (size: number): Promise<void> => {
    const sent = createHash("sha256");
    const posted = await fetch(base, {
      method: "POST",
      headers: { ...auth, "content-type": "application/x-bench-bytes" },
      body: Readable.from(pattern(size, sent)) as unknown as BodyInit,
      duplex: "half",
    } as RequestInit);
    if (posted.status >= 300) throw new Error(`POST file-echo: ${posted.status} ${await posted.text()}`);
    const { request_id: id } = (await posted.json()) as { request_id: string };
    for (;;) {
      const r = (await (await fetch(`${base}/requests/${id}`, { headers: auth })).json()) as { outcome: unknown };
      if (r.outcome === "success") break;
      if (r.outcome !== null) throw new Error(`file-echo ${id}: ${JSON.stringify(r)}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    const out = await fetch(`${base}/requests/${id}/output`, { headers: auth });
    const got = await drainHash(out.body as unknown as AsyncIterable<Uint8Array>);
    const want = { size, sha256: sent.digest("hex") };
    if (got.size !== want.size || got.sha256 !== want.sha256)
      throw new Error(`file-echo returned ${JSON.stringify(got)}, not ${JSON.stringify(want)}`);
  };
  // Warm-up: the pod started and the code loaded, so the timed run measures the data path.
  await run(MiB);
  const operatorIdleMiB = await rss();
  let operatorPeakMiB = operatorIdleMiB;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      operatorPeakMiB = Math.max(operatorPeakMiB, await rss());
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  const t0 = performance.now();
  try {
    await run(bytes);
  } finally {
    sampling = false;
    await sampler;
  }
  const trellisSeconds = (performance.now() - t0) / 1000;

  const s3 = localS3();
  const client = localS3Client(s3);
  const Key = `bench-plain-file-${process.pid}-${Date.now()}`;
  const data = Buffer.concat([...pattern(bytes, createHash("sha256"))]);
  const t1 = performance.now();
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: data }));
  const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key }));
  const read = await drainHash(got.Body as AsyncIterable<Uint8Array>);
  const clientSeconds = (performance.now() - t1) / 1000;
  if (read.size !== bytes) throw new Error(`plain client: ${read.size} bytes back, not ${bytes}`);
  await client.send(new DeleteObjectsCommand({ Bucket: s3.bucket, Delete: { Objects: [{ Key }], Quiet: true } }));
  client.destroy();
  return { bytes, trellisSeconds, clientSeconds, operatorIdleMiB, operatorPeakMiB };
}

export function printBigFileFigures(f: BigFileFigures): void {
  const r = (x: number) => x.toFixed(2);
  const mib = f.bytes / MiB;
  console.log(
    `  a ${mib} MiB File streamed in through the HTTP API, into a function and back out: ` +
      `${r(f.trellisSeconds)} s, ${r((2 * mib) / f.trellisSeconds)} MiB/s (${mib} MiB up + ${mib} MiB down)`,
  );
  console.log(
    `  baseline, a plain S3 client putting and getting the same bytes: ` +
      `${r(f.clientSeconds)} s, ${r((2 * mib) / f.clientSeconds)} MiB/s; ratio ${r(f.clientSeconds / f.trellisSeconds)}`,
  );
  console.log(
    `  operator RSS while it flowed: idle ${r(f.operatorIdleMiB)} MiB, peak ${r(f.operatorPeakMiB)} MiB ` +
      `(+${r(f.operatorPeakMiB - f.operatorIdleMiB)} MiB)`,
  );
}
