import { describe, expect, it } from "vitest";
import type { RuntimeApi } from "./api.js";
import type { AttemptBook } from "./attempt-book.js";
import type { Attempt } from "./attempts.js";
import { BlobError, type Blobs } from "./blobs.js";
import { Reporter } from "./reporter.js";

/** A reporter whose output store throws `error`, and the failures it reports. */
function reporterWith(error: Error) {
  const failures: unknown[] = [];
  const api = {
    failure: (_call: string, body: unknown) => {
      failures.push(body);
      return Promise.resolve({ ok: true as const, status: 200, body: {} });
    },
  } as unknown as RuntimeApi;
  const blobs = { outbound: () => Promise.reject(error) } as unknown as Blobs;
  let done: Promise<void> = Promise.resolve();
  const book = {
    finish: () => undefined,
    forget: () => undefined,
    serial: { run: (_key: string, fn: () => Promise<void>) => (done = fn()) },
  } as unknown as AttemptBook;
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
  const reporter = new Reporter(api, blobs, book, log as never);
  const att = { key: "c1#1", call: "c1", attempt: 1, state: "running" } as Attempt;
  return { failures, succeed: async () => (reporter.succeed(att, { json: 1 }), await done) };
}

describe("reporter", () => {
  it("a value the operator refuses for its size fails the call for good, naming the limit", async () => {
    const r = reporterWith(
      new BlobError(
        "output: storing a 1431655824-byte value failed: blob_too_large: body.put.size: a blob may hold at most 1073741824 bytes",
      ),
    );
    await r.succeed();
    expect(r.failures).toEqual([
      {
        attempt: 1,
        error: { type: "ValueTooLarge", message: expect.stringMatching(/at most 1073741824 bytes/) },
        kind: "user",
        retryable: false,
      },
    ]);
  });

  it("a store that could not be reached is an infrastructure failure, retried", async () => {
    const r = reporterWith(new BlobError("output: storing a 5-byte value failed: the store answered HTTP 503"));
    await r.succeed();
    expect(r.failures).toEqual([
      {
        attempt: 1,
        error: { type: "ReportFailed", message: expect.any(String) },
        kind: "infrastructure",
        retryable: true,
      },
    ]);
  });
});
