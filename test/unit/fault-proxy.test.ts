// The fault proxy of the fault-injection suite against a tiny local HTTP server (no cluster): each
// fault does what it says, writes lost after commit did reach the server, counts are kept, and a
// seed replays the same plan.
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  FAULT_KINDS,
  type FaultKind,
  type FaultPlan,
  type FaultProxy,
  classify,
  decideFault,
  firstFault,
  startFaultProxy,
} from "../support/fault-proxy.js";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let upstream: http.Server;
let upstreamUrl = "";
let received: { method: string; url: string; body: string; auth?: string }[] = [];
let proxy: FaultProxy | undefined;

beforeEach(async () => {
  received = [];
  upstream = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      received.push({ method: req.method!, url: req.url!, body, auth: req.headers.authorization });
      if (req.url?.includes("watch=true")) {
        // A watch: one event every 50 ms until the client goes away.
        res.writeHead(200, { "content-type": "application/json" });
        const t = setInterval(() => res.write('{"type":"ADDED"}\n'), 50);
        res.once("close", () => clearInterval(t));
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ echo: body, url: req.url }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

function call(base: string, method: string, path: string, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, agent: false }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

const only = (kind: FaultKind, cls: "write" | "watch" = "write"): FaultPlan => ({
  seed: 1,
  rates: { [cls]: { [kind]: 1 } },
  delayMs: [300, 300],
  cutWatchAfterMs: [250, 250],
  retryAfterSeconds: 3,
});

describe("fault proxy", () => {
  it("classes requests: lease writes, watches, writes, reads", () => {
    expect(classify("PUT", "/apis/coordination.k8s.io/v1/namespaces/x/leases/l")).toBe("lease");
    expect(classify("GET", "/apis/coordination.k8s.io/v1/namespaces/x/leases/l")).toBe("read");
    expect(classify("GET", "/apis/trellis.dev/v1alpha1/functioncalls?watch=true&resourceVersion=5")).toBe("watch");
    expect(classify("GET", "/api/v1/pods?watch=1")).toBe("watch");
    expect(classify("GET", "/api/v1/pods?limit=500")).toBe("read");
    for (const m of ["POST", "PUT", "PATCH", "DELETE"])
      expect(classify(m, "/api/v1/namespaces/a/pods/p")).toBe("write");
  });

  it("picks at most one fault per roll from cumulative rates", () => {
    const rates = { throttle: 0.1, error500: 0.2, reset: 0.1 };
    expect(decideFault(rates, 0.05)).toBe("throttle");
    expect(decideFault(rates, 0.15)).toBe("error500");
    expect(decideFault(rates, 0.35)).toBe("reset");
    expect(decideFault(rates, 0.45)).toBeUndefined();
    expect(decideFault(undefined, 0)).toBeUndefined();
  });

  it("passes requests through with the body, the upstream's token and no fault on reads", async () => {
    proxy = await startFaultProxy({ server: upstreamUrl, token: "secret" }, only("error500"));
    const r = await call(proxy.url, "GET", "/api/v1/pods?limit=1");
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).url).toBe("/api/v1/pods?limit=1");
    expect(received[0]?.auth).toBe("Bearer secret");
    expect(proxy.requests.read).toBe(1);
    expect(proxy.totalFaults).toBe(0);
  });

  it("answers 429 with Retry-After, 500 and 503 without forwarding", async () => {
    for (const [kind, code] of [
      ["throttle", 429],
      ["error500", 500],
      ["error503", 503],
    ] as const) {
      proxy = await startFaultProxy({ server: upstreamUrl }, only(kind));
      const r = await call(proxy.url, "POST", "/api/v1/namespaces/a/configmaps", "{}");
      expect(r.status).toBe(code);
      expect(JSON.parse(r.body)).toMatchObject({ kind: "Status", code });
      if (kind === "throttle") expect(r.headers["retry-after"]).toBe("3");
      expect(proxy.faults[kind]).toBe(1);
      expect(proxy.faultsByClass[`write:${kind}`]).toBe(1);
      await proxy.close();
      proxy = undefined;
    }
    expect(received).toHaveLength(0);
  });

  it("resets the connection before forwarding: the server never sees the write", async () => {
    proxy = await startFaultProxy({ server: upstreamUrl }, only("reset"));
    await expect(call(proxy.url, "POST", "/api/v1/namespaces/a/configmaps", "{}")).rejects.toThrow(
      /ECONNRESET|hang up/,
    );
    expect(received).toHaveLength(0);
    expect(proxy.faults.reset).toBe(1);
  });

  it("loses the answer after commit: the server got the write, the client an error", async () => {
    proxy = await startFaultProxy({ server: upstreamUrl }, only("lostAnswer"));
    await expect(call(proxy.url, "PUT", "/api/v1/namespaces/a/configmaps/c", '{"x":1}')).rejects.toThrow(
      /ECONNRESET|hang up/,
    );
    expect(received).toEqual([expect.objectContaining({ method: "PUT", body: '{"x":1}' })]);
    expect(proxy.faults.lostAnswer).toBe(1);
  });

  it("delays an answer, then forwards it", async () => {
    proxy = await startFaultProxy({ server: upstreamUrl }, only("delay"));
    const t0 = Date.now();
    const r = await call(proxy.url, "DELETE", "/api/v1/namespaces/a/pods/p");
    expect(r.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(proxy.faults.delay).toBe(1);
  });

  it("cuts a watch stream mid-way after events went through", async () => {
    proxy = await startFaultProxy({ server: upstreamUrl }, only("cutWatch", "watch"));
    const events: string[] = [];
    const err = await new Promise<Error>((resolve) => {
      const req = http.get(`${proxy!.url}/api/v1/pods?watch=true`, { agent: false }, (res) => {
        res.on("data", (c: Buffer) => events.push(c.toString()));
        res.on("error", resolve);
        res.on("end", () => resolve(new Error("ended cleanly")));
      });
      req.on("error", resolve);
    });
    expect(err.message).toMatch(/aborted|ECONNRESET/);
    expect(events.join("")).toContain("ADDED");
    expect(proxy.faults.cutWatch).toBe(1);
  });

  it("follows the seeded rates and replays the same plan for the same seed", async () => {
    const plan: FaultPlan = { seed: 42, rates: { write: { error500: 0.2, error503: 0.1 } } };
    const run = async () => {
      const p = await startFaultProxy({ server: upstreamUrl }, plan);
      const codes: number[] = [];
      for (let i = 0; i < 200; i++) codes.push((await call(p.url, "PATCH", `/api/v1/x/${i}`, "{}")).status);
      const faults = { ...p.faults };
      await p.close();
      return { codes, faults };
    };
    const a = await run();
    const b = await run();
    expect(b.codes).toEqual(a.codes);
    expect(a.faults.error500).toBe(a.codes.filter((c) => c === 500).length);
    expect(a.faults.error500).toBeGreaterThan(20);
    expect(a.faults.error500).toBeLessThan(60);
    expect(a.faults.error503).toBeGreaterThan(5);
    expect(a.faults.error503).toBeLessThan(35);
    expect(FAULT_KINDS.filter((k) => k !== "error500" && k !== "error503").every((k) => a.faults[k] === 0)).toBe(true);
  });

  it("gives each class its own stream: the faulted writes do not move when reads interleave", async () => {
    const plan: FaultPlan = { seed: 7, rates: { write: { error500: 0.3 }, read: { error503: 0.5 } } };
    const writes = async (readsBetween: number) => {
      const p = await startFaultProxy({ server: upstreamUrl }, plan);
      const codes: number[] = [];
      for (let i = 0; i < 40; i++) {
        for (let r = 0; r < readsBetween; r++) await call(p.url, "GET", `/api/v1/x/${i}`);
        codes.push((await call(p.url, "PATCH", `/api/v1/x/${i}`, "{}")).status);
      }
      await p.close();
      return codes;
    };
    const plain = await writes(0);
    expect(await writes(2)).toEqual(plain);
    // firstFault names the first faulted write of the plan.
    const first = firstFault(plan, "write");
    expect(first).toBeGreaterThan(0);
    expect(plain.indexOf(500) + 1).toBe(first);
    expect(firstFault({ seed: 7, rates: {} }, "lease", 50)).toBe(0);
  });

  it("passes everything through while disabled", async () => {
    proxy = await startFaultProxy({ server: upstreamUrl }, only("error503"));
    proxy.enabled = false;
    expect((await call(proxy.url, "POST", "/api/v1/x", "{}")).status).toBe(200);
    expect(proxy.totalFaults).toBe(0);
  });
});
