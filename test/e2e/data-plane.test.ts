// The data plane on the local cluster's object store (SeaweedFS): values over the inline limit and
// Files go between function pods and the store through presigned URLs, never through the
// operator; a File posted to the HTTP API comes back byte for byte; deleting a request removes
// its objects; the orphan sweep removes the objects of a request deleted while no operator ran.
import { createHash, randomBytes } from "node:crypto";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUNTIME_API_PREFIX } from "../../protocol/index.js";
import { createNamespace, deleteNamespace, kubectl, serviceAccountToken, waitFor } from "../support/kube.js";
import { metricsPortFor, waitNoOtherOperator } from "../support/helm.js";
import { localS3, localS3Client } from "../support/s3.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { deployApp } from "./support/trellis.js";

const HTTP_PORT = Number(process.env.TRELLIS_E2E_HTTP_PORT ?? 18080);
const API = `http://127.0.0.1:${HTTP_PORT}`;
const METRICS = `http://127.0.0.1:${metricsPortFor(HTTP_PORT)}/metrics`;
const CHART = process.env.TRELLIS_E2E_OPERATOR === "chart";
const PREFIX = CHART ? "e2e-chart/" : "e2e/";
// Short sweeps so the test sees one: every 2 s, an orphan removed once seen for 4 s.
const SWEEP = {
  TRELLIS_BLOB_SWEEP_INTERVAL_SECONDS: "2",
  TRELLIS_BLOB_SWEEP_GRACE_SECONDS: "4",
};

const SOURCE = `
import hashlib
from tensorlake.applications import File, application, function


@function()
def produce(mib: int, seed: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 32768
    return block * mib


@function()
def digest(data: bytes) -> dict:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@application()
@function()
def roundtrip(mib: int) -> dict:
    return digest(produce(mib, 7))


@function()
def flip(content: bytes) -> bytes:
    return content[::-1]


@application()
@function()
def mirror(doc: File) -> File:
    return File(content=flip(doc.content), content_type="application/x-mirrored")


@function()
def make_big(mib: int) -> File:
    block = hashlib.sha256(b"big").digest() * 32768
    return File(content=block * mib, content_type="application/x-big")


@function()
def check_big(f: File) -> dict:
    return {"size": len(f.content), "sha256": hashlib.sha256(f.content).hexdigest(), "type": f.content_type}


@application()
@function()
def bigfile(mib: int) -> dict:
    return check_big(make_big(mib))


@application()
@function()
def bigecho(doc: File) -> File:
    return File(content=flip(doc.content), content_type="application/x-flipped")
`;

// Room for a 100 MiB File in memory a few times over (bytes, its copy, the base64 chunks).
const BIG = { resources: { memory: "2Gi" } };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let op: OperatorProcess;
let ns = "";
let token = "";
const s3 = localS3();
const client = localS3Client(s3);

async function objectsOf(request: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${PREFIX}${ns}/${request}/` }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

const api = (path: string, init: RequestInit = {}) =>
  fetch(`${API}/v1/namespaces/${ns}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
  });

async function finished(app: string, id: string): Promise<{ outcome: unknown }> {
  return waitFor(
    `request ${id} to finish`,
    async () => {
      const r = (await (await api(`/applications/${app}/requests/${id}`)).json()) as { outcome: unknown };
      return r.outcome === null ? undefined : r;
    },
    180_000,
  );
}

/** The id of a request of `app` posted with `body`, once it has succeeded. */
async function finishedRequest(app: string, body: BodyInit, contentType: string): Promise<string> {
  const r = await api(`/applications/${app}`, { method: "POST", body, headers: { "content-type": contentType } });
  expect(r.status, await r.clone().text()).toBeLessThan(300);
  const { request_id: id } = (await r.json()) as { request_id: string };
  expect(await finished(app, id)).toMatchObject({ outcome: "success" });
  return id;
}

const finishedRoundtrip = (mib: number) => finishedRequest("roundtrip", String(mib), "application/json");

/** Counts of the runtime API's routes, from the operator's own /metrics (from-source operator only). */
async function runtimeRoutes(): Promise<Record<string, number>> {
  const text = await (await fetch(METRICS)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^trellis_runtime_api_requests_total\{([^}]*)\} (\d+)/gm)) {
    const route = (/route="([^"]*)"/.exec(m[1]!)?.[1] ?? "").replace(RUNTIME_API_PREFIX, "");
    out[route] = (out[route] ?? 0) + Number(m[2]);
  }
  return out;
}

/**
 * What the functions' produce/make_big compute: `mib` MiB of the SHA-256 of `seed` repeated,
 * hashed (what digest/check_big answer).
 */
function repeatedSha256(seed: string, mib: number): string {
  const block = createHash("sha256").update(seed).digest();
  const expected = createHash("sha256");
  for (let i = 0; i < mib * 32768; i++) expected.update(block);
  return expected.digest("hex");
}

/** Since `before`: the pods asked for presigned URLs and sent no blob bytes through the operator. */
async function expectDirectTransfers(before: Record<string, number>): Promise<void> {
  if (CHART) return; // the chart's operator metrics are not scraped here
  const after = await runtimeRoutes();
  const delta = (route: string) => (after[route] ?? 0) - (before[route] ?? 0);
  expect(delta("/blob-urls")).toBeGreaterThanOrEqual(2);
  expect(delta("/blobs")).toBe(0);
  expect(delta("/blobs/*")).toBe(0);
}

beforeAll(async () => {
  op = await startOperator("data-plane", SWEEP);
  ns = await createNamespace("data");
  await deployApp(ns, "roundtrip", SOURCE, "roundtrip");
  await deployApp(ns, "mirror", SOURCE, "mirror");
  await deployApp(ns, "bigfile", SOURCE, "bigfile", {
    functions: ["bigfile", "make_big", "check_big"].map((name) => ({ name, ...BIG })),
  });
  await deployApp(ns, "bigecho", SOURCE, "bigecho", {
    functions: ["bigecho", "flip"].map((name) => ({ name, ...BIG })),
  });
  token = await serviceAccountToken(ns, "invoker", [
    { verbs: "create,get,list,delete", resource: "functioncalls.trellis.dev" },
  ]);
});
afterAll(async () => {
  await deleteNamespace(ns);
  await op?.stop();
});

describe("data plane on the object store", () => {
  it("a 24 MiB value goes from one function to another through the store, not the operator", async () => {
    const before = CHART ? {} : await runtimeRoutes();
    const id = await finishedRoundtrip(24);
    const out = (await (await api(`/applications/roundtrip/requests/${id}/output`)).json()) as {
      size: number;
      sha256: string;
    };
    expect(out).toEqual({ size: 24 * 1024 * 1024, sha256: repeatedSha256("7", 24) });
    // The value is an object of this request in the bucket.
    expect((await objectsOf(id)).length).toBeGreaterThan(0);
    await expectDirectTransfers(before);
  });

  it("a 3 MiB File posted to the HTTP API comes back through two functions byte for byte", async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const id = await finishedRequest("mirror", data, "application/x-test-bytes");
    const out = await api(`/applications/mirror/requests/${id}/output`);
    expect(out.headers.get("content-type")).toBe("application/x-mirrored");
    const back = Buffer.from(await out.arrayBuffer());
    expect(back.length).toBe(data.length);
    expect(back.equals(Buffer.from(data).reverse())).toBe(true);
  });

  it(
    "a 100 MiB File goes from one function to another as a spilled value, byte for byte",
    { timeout: 300_000 },
    async () => {
      const before = CHART ? {} : await runtimeRoutes();
      const id = await finishedRequest("bigfile", "100", "application/json");
      const out = (await (await api(`/applications/bigfile/requests/${id}/output`)).json()) as unknown;
      expect(out).toEqual({ size: 100 * 1024 * 1024, sha256: repeatedSha256("big", 100), type: "application/x-big" });
      await expectDirectTransfers(before);
    },
  );

  it(
    "a 100 MiB File streams in through the HTTP API, through two functions and back out, byte for byte",
    { timeout: 300_000 },
    async () => {
      const data = randomBytes(100 * 1024 * 1024);
      const flipped = createHash("sha256").update(Buffer.from(data).reverse()).digest("hex");
      // The operator's RSS (its own process metric) while the File goes in and comes back out:
      // it streams the bytes, so it should not grow by anything like the File's size.
      const rss = async () =>
        Number(/^trellis_process_resident_memory_bytes (\d+)/m.exec(await (await fetch(METRICS)).text())?.[1]);
      const idle = CHART ? 0 : await rss();
      let peak = idle;
      let sampling = !CHART;
      const sampler = (async () => {
        while (sampling) {
          peak = Math.max(peak, await rss());
          await sleep(100);
        }
      })();
      try {
        const id = await finishedRequest("bigecho", data, "application/x-test-bytes");
        const out = await api(`/applications/bigecho/requests/${id}/output`);
        expect(out.status).toBe(200);
        expect(out.headers.get("content-type")).toBe("application/x-flipped");
        const hash = createHash("sha256");
        let size = 0;
        for await (const chunk of out.body as unknown as AsyncIterable<Uint8Array>) {
          hash.update(chunk);
          size += chunk.byteLength;
        }
        expect({ size, sha256: hash.digest("hex") }).toEqual({ size: data.length, sha256: flipped });
      } finally {
        sampling = false;
        await sampler;
      }
      if (!CHART) {
        const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
        console.log(
          `[data-plane] operator RSS idle ${mib(idle)} MiB, peak ${mib(peak)} MiB while 100 MiB went in and out`,
        );
        expect(idle).toBeGreaterThan(0);
        expect(peak - idle).toBeLessThan(64 * 1024 * 1024);
      }
    },
  );

  it("deleting a request deletes its objects", async () => {
    const id = await finishedRoundtrip(2);
    expect((await objectsOf(id)).length).toBeGreaterThan(0);
    expect((await api(`/applications/roundtrip/requests/${id}`, { method: "DELETE" })).status).toBeLessThan(300);
    await waitFor(`the objects of ${id} to go`, async () => ((await objectsOf(id)).length === 0 ? true : undefined));
  });

  it("the sweep removes the objects of a request deleted while the operator was down", async () => {
    const id = await finishedRoundtrip(2);
    const left = await objectsOf(id);
    expect(left.length).toBeGreaterThan(0);
    await op.stop();
    // A chart's pod may still be stopping after the release is gone: wait until none leads.
    await waitNoOtherOperator();
    try {
      await kubectl(["delete", "fc", "-n", ns, "-l", `trellis.dev/request=${id}`, "--wait=true"]);
      await kubectl(["delete", "fc", "-n", ns, id, "--ignore-not-found", "--wait=true"]);
      // Nobody saw the root go: its objects stay until an operator sweeps.
      expect(await objectsOf(id)).toEqual(left);
    } finally {
      op = await startOperator("data-plane", SWEEP);
    }
    // The counter moves once the pass that deleted the objects ends: wait for both, not one then
    // the other (a read between the deletion and the count sees 0).
    const swept = async () =>
      CHART || Number(/^trellis_blob_sweep_removed_total (\d+)/m.exec(await (await fetch(METRICS)).text())?.[1]) >= 1;
    await waitFor(
      `the sweep to remove the objects of ${id}${CHART ? "" : " and count them"}`,
      async () => ((await objectsOf(id)).length === 0 && (await swept()) ? true : undefined),
      60_000,
    );
  });
});
