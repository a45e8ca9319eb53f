// The runtime API on a fake port: routes validate, authenticate, and answer the port's
// rejections as error bodies; no engine needed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RUNTIME_API_PREFIX } from "../../../protocol/index.js";
import { FileBlobStore } from "../blobs/index.js";
import { podToken } from "./credentials.js";
import type { Rejection, RuntimePort } from "./port.js";
import { buildRuntimeApi } from "./server.js";

const dir = mkdtempSync(join(tmpdir(), "trellis-port-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const no = (code: Rejection["code"], message: string): Rejection => ({ rejected: true, code, message });
const seen: unknown[] = [];

const port = {
  settings: { heartbeatIntervalMs: 1, leaseWaitMs: 2, inlineValueLimitBytes: 3, directBlobs: false },
  maxBlobBytes: 4,
  reportResult: async (pod, call, attempt, output) => {
    seen.push([pod.pod, call, attempt, output]);
    return call === "old" ? no("stale_attempt", "call old: attempt 1 is not the running one") : undefined;
  },
  blobToPut: () => "ns/r/new",
  blobToGet: (_pod, ref) =>
    ref.startsWith("ns/") ? ref : no("forbidden_blob", `path: blob ${ref} is not in namespace ns`),
} as Partial<RuntimePort> as RuntimePort;

const api = buildRuntimeApi(port, {
  operatorKey: "k",
  podIdentity: (ns, pod) =>
    ns === "ns" && pod === "p1"
      ? { application: "app", function: "f", uid: "uid-p1" }
      : "not a pod known to the operator",
  blobs: new FileBlobStore(dir),
});
const headers = { "x-trellis-pod": "ns/p1", authorization: `Bearer ${podToken("k", "ns", "p1", "uid-p1")}` };
const req = (method: "GET" | "POST" | "PUT", url: string, payload?: unknown, extra: Record<string, string> = {}) =>
  api.inject({
    method,
    url: RUNTIME_API_PREFIX + url,
    headers: { ...headers, ...extra },
    ...(payload === undefined ? {} : { payload: payload as object }),
  });

describe("runtime API on a port", () => {
  it("a report reaches the port; its rejection is the error body", async () => {
    expect((await req("POST", "/calls/c/result", { attempt: 2, output: { value: 1 } })).statusCode).toBe(200);
    expect(seen).toEqual([["p1", "c", 2, { value: 1 }]]);
    const stale = await req("POST", "/calls/old/result", { attempt: 1, output: { value: 1 } });
    expect([stale.statusCode, stale.json()]).toEqual([
      409,
      { code: "stale_attempt", message: "call old: attempt 1 is not the running one" },
    ]);
  });

  it("blob bytes stream to the ref the port gives, bounded by its limit; reads follow its answer", async () => {
    const put = (body: Buffer) => req("PUT", "/blobs", body, { "content-type": "application/octet-stream" });
    expect((await put(Buffer.from("abcd"))).json()).toEqual({ blob: "ns/r/new" });
    expect((await put(Buffer.from("abcde"))).json().code).toBe("blob_too_large");
    const got = await req("GET", "/blobs/ns/r/new");
    expect(got.body).toBe("abcd");
    expect((await req("GET", "/blobs/other/r/x")).json()).toEqual({
      code: "forbidden_blob",
      message: "path: blob other/r/x is not in namespace ns",
    });
  });
});
