// The shared fixtures against the TypeScript schemas; runtime-image/python/tests/test_protocol_fixtures.py
// checks the same files against the Python twin.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { childName } from "./src/child-names.js";
import { MAX_FRAME_BYTES, WORKER_PROTOCOL_VERSION, sidecarToWorker, workerToSidecar } from "./src/worker-messages.js";

interface Example {
  name: string;
  direction: "worker" | "sidecar";
  message: unknown;
  field?: string;
}
const messages = JSON.parse(readFileSync(new URL("./fixtures/worker-messages.json", import.meta.url), "utf8")) as {
  protocol: number;
  valid: Example[];
  invalid: Example[];
};
const childNames = JSON.parse(readFileSync(new URL("./fixtures/child-names.json", import.meta.url), "utf8")) as {
  request: string;
  parent: string;
  sequence: number;
  name: string;
}[];

const schemaOf = (direction: Example["direction"]) => (direction === "worker" ? workerToSidecar : sidecarToWorker);

/** `calls[0].args[1]`, the way the Python validator names a field. */
function joinPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
}

/** Every issue's path, including those inside the branches of a union (relative to the union). */
function issuePaths(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): string[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    const nested = issue.code === "invalid_union" ? issue.errors.flatMap((branch) => issuePaths(branch, path)) : [];
    return [joinPath(path), ...nested];
  });
}

describe("worker protocol fixtures", () => {
  it("are for this protocol version", () => {
    expect(messages.protocol).toBe(WORKER_PROTOCOL_VERSION);
    expect(MAX_FRAME_BYTES).toBe(67_108_864);
  });

  it("cover every message type of both directions", () => {
    const types = (d: Example["direction"]) =>
      new Set(messages.valid.filter((e) => e.direction === d).map((e) => (e.message as { type: string }).type));
    expect([...types("worker")].sort()).toEqual(workerToSidecar.options.map((o) => o.shape.type.value).sort());
    expect([...types("sidecar")].sort()).toEqual(sidecarToWorker.options.map((o) => o.shape.type.value).sort());
    expect(messages.invalid.length).toBeGreaterThanOrEqual(25);
  });

  it.each(messages.valid.map((e) => [e.name, e] as const))("accept %s", (_name, example) => {
    const result = schemaOf(example.direction).safeParse(example.message);
    expect(result.error?.issues).toBeUndefined();
  });

  it.each(messages.invalid.map((e) => [e.name, e] as const))("reject %s", (_name, example) => {
    const result = schemaOf(example.direction).safeParse(example.message);
    expect(result.success).toBe(false);
    expect(issuePaths(result.error!.issues)).toContain(example.field);
  });
});

describe("child names", () => {
  it.each(childNames.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    expect(childName(c.request, c.parent, c.sequence)).toBe(c.name);
  });
});
