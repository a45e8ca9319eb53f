// Failures on the cluster: a user exception fails the call with type, message and traceback; a
// parent catching a child's FunctionError succeeds; retries back off; a timeout fires.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { deployApp, invoke, requestCalls, waitFinished } from "./support/trellis.js";

let op: OperatorProcess;
let ns = "";
const APP = "failures";

beforeAll(async () => {
  op = await startOperator("failures");
  ns = await createNamespace("failures");
  await deployApp(ns, APP, readFileSync(join(import.meta.dirname, "apps/failures.py"), "utf8"), "fails");
});
afterAll(async () => {
  await deleteNamespace(ns);
  await op?.stop();
});

describe("failures on the cluster", () => {
  it("a user exception fails the call and the request with type, message and traceback", async () => {
    const req = await invoke(ns, APP, "fails", [3]);
    const status = await waitFinished(ns, req);
    expect(status.phase).toBe("Failed");
    const calls = await requestCalls(ns, req);
    const child = calls.find((c) => c.fn === "boom")!;
    expect(child.status.phase).toBe("Failed");
    expect(child.status.error).toMatchObject({ type: "ValueError", message: "bad 3", reason: "function_error" });
    expect(child.status.error?.traceback).toMatch(/Traceback[\s\S]*raise ValueError/);
    // The root failed because its child did; the error says which call caused it.
    expect(status.error?.type).toBe("FunctionError");
    expect(status.error?.message).toContain("bad 3");
  });

  it("a parent that catches the child's FunctionError succeeds", async () => {
    const req = await invoke(ns, APP, "catches", [4]);
    const status = await waitFinished(ns, req);
    expect(status.phase).toBe("Succeeded");
    expect(status.output?.value).toMatch(/^caught FunctionError: .*bad 4/);
  });

  it("retries a failing call with exponential backoff until it succeeds", async () => {
    const req = await invoke(ns, APP, "retrying", [7]);
    const status = await waitFinished(ns, req);
    expect(status.error, JSON.stringify(status.error)).toBeUndefined();
    const out = status.output?.value as { value: number; runs: number; gaps: number[] };
    expect(out.value).toBe(70);
    expect(out.runs).toBe(3);
    // initial_delay 0.5 s, then doubled: the second gap is longer than the first.
    expect(out.gaps[0]).toBeGreaterThanOrEqual(0.45);
    expect(out.gaps[1]).toBeGreaterThanOrEqual(0.95);
    const flaky = (await requestCalls(ns, req)).find((c) => c.fn === "flaky")!;
    expect(flaky.status.attempts).toBe(3);
  });

  it("a call that runs past its timeout fails with reason function_timeout", async () => {
    const started = Date.now();
    const req = await invoke(ns, APP, "times_out", [1]);
    const status = await waitFinished(ns, req, 90_000);
    expect(status.phase).toBe("Failed");
    const slow = (await requestCalls(ns, req)).find((c) => c.fn === "slow")!;
    expect(slow.status.phase).toBe("Failed");
    expect(slow.status.error?.reason).toBe("function_timeout");
    expect(Date.now() - started).toBeLessThan(50_000);
  });
});
