// Pure pieces of the edge: paths, queries, error typing, the logger.
import { describe, expect, it } from "vitest";
import { KubeConfig } from "@kubernetes/client-node";
import { buildQuery, shareAgent } from "./client.js";
import {
  errorFromResponse,
  isAlreadyExists,
  isConflict,
  isGone,
  isInvalid,
  isNotFound,
  isTransient,
} from "./errors.js";
import { createLogger, parseLogLevel } from "../../../protocol/index.js";
import { registerResource, resourcePath } from "./resources.js";

describe("resourcePath", () => {
  it("builds core, group, cluster-scoped and subresource paths", () => {
    expect(resourcePath({ apiVersion: "v1", kind: "Pod", namespace: "ns", name: "p" })).toBe(
      "/api/v1/namespaces/ns/pods/p",
    );
    expect(
      resourcePath({ apiVersion: "trellis.dev/v1alpha1", kind: "FunctionCall", namespace: "ns", name: "c" }, "status"),
    ).toBe("/apis/trellis.dev/v1alpha1/namespaces/ns/functioncalls/c/status");
    expect(resourcePath({ apiVersion: "trellis.dev/v1alpha1", kind: "Application" })).toBe(
      "/apis/trellis.dev/v1alpha1/applications",
    );
    expect(resourcePath({ apiVersion: "v1", kind: "Namespace", name: "x" })).toBe("/api/v1/namespaces/x");
    expect(resourcePath({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", namespace: "a b", name: "l" })).toBe(
      "/apis/coordination.k8s.io/v1/namespaces/a%20b/leases/l",
    );
  });
  it("names unknown kinds and missing namespaces", () => {
    expect(() => resourcePath({ apiVersion: "v1", kind: "Widget" })).toThrow(/kind Widget in v1: not a known resource/);
    expect(() => resourcePath({ apiVersion: "v1", kind: "Pod", name: "p" })).toThrow(/namespace is required/);
    registerResource({ apiVersion: "example.com/v1", kind: "Widget", plural: "widgets", namespaced: true });
    expect(resourcePath({ apiVersion: "example.com/v1", kind: "Widget", namespace: "n" })).toBe(
      "/apis/example.com/v1/namespaces/n/widgets",
    );
  });
});

describe("buildQuery", () => {
  it("encodes and skips undefined", () => {
    expect(buildQuery({ labelSelector: "a=b,c in (d)", limit: 5, x: undefined, watch: true })).toBe(
      "?labelSelector=a%3Db%2Cc%20in%20(d)&limit=5&watch=true",
    );
    expect(buildQuery({})).toBe("");
  });
});

describe("errors", () => {
  const status = (code: number, reason: string, message: string) =>
    JSON.stringify({ kind: "Status", status: "Failure", code, reason, message });
  it("types 404, 409 Conflict, 409 AlreadyExists, 410, 422 and keeps the server's message", () => {
    const conflict = errorFromResponse(409, status(409, "Conflict", "the object has been modified"), "PATCH", "/x");
    expect(isConflict(conflict) && !isAlreadyExists(conflict)).toBe(true);
    const exists = errorFromResponse(409, status(409, "AlreadyExists", 'x "a" already exists'), "POST", "/x");
    expect(isAlreadyExists(exists) && !isConflict(exists)).toBe(true);
    expect(isNotFound(errorFromResponse(404, "", "GET", "/x"))).toBe(true);
    expect(isGone(errorFromResponse(410, status(410, "Expired", "too old"), "GET", "/x"))).toBe(true);
    const invalid = errorFromResponse(422, status(422, "Invalid", 'spec.function: Invalid value: "1x"'), "POST", "/x");
    expect(isInvalid(invalid)).toBe(true);
    expect(invalid.message).toBe('POST /x: spec.function: Invalid value: "1x"');
    expect(isTransient(errorFromResponse(503, "busy", "GET", "/x"))).toBe(true);
    expect(isTransient(errorFromResponse(429, "slow down", "GET", "/x"))).toBe(true);
    expect(isTransient(invalid)).toBe(false);
    expect(isTransient(new Error("ECONNRESET"))).toBe(true);
  });
});

describe("logger", () => {
  it("writes one JSON object per line with level, msg, time and fields", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", sink: (l) => lines.push(l), fields: { component: "test" } });
    log.debug("hidden");
    log.child({ key: "ns/a" }).warn("reconcile failed", { err: new Error("boom"), n: 2 });
    expect(lines.length).toBe(1);
    const rec = JSON.parse(lines[0]!);
    expect(rec).toMatchObject({ level: "warn", msg: "reconcile failed", component: "test", key: "ns/a", n: 2 });
    expect(rec.err).toMatchObject({ type: "Error", message: "boom" });
    expect(typeof rec.time).toBe("string");
  });
  it("parses levels and names bad ones", () => {
    expect(parseLogLevel(undefined)).toBe("info");
    expect(parseLogLevel("debug")).toBe("debug");
    expect(() => parseLogLevel("loud")).toThrow(/log level: must be one of/);
  });
});

describe("shareAgent", () => {
  it("gives client-node's request paths one keep-alive agent", async () => {
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser(
      { name: "c", server: "https://127.0.0.1:1", skipTLSVerify: false },
      { name: "u", token: "t" },
    );
    shareAgent(kc, 7);
    const a: { agent?: unknown } = {};
    const b: { agent?: unknown } = {};
    await kc.applyToHTTPSOptions(a as never);
    await kc.applyToHTTPSOptions(b as never);
    expect(a.agent).toBe(b.agent);
    expect((a.agent as { keepAlive: boolean; maxSockets: number }).keepAlive).toBe(true);
    expect((a.agent as { maxSockets: number }).maxSockets).toBe(7);
  });
});
