// Per-attempt timeouts on the cluster: the operator resolves a call's timeout (call > Application
// spec > decorator) and the sidecar passes it to the worker in `assign`. A function decorated with
// timeout=2 that sleeps 5 s succeeds when its Application raises the timeout to 20 s, and fails with
// reason function_timeout when it does not.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApplicationSpec } from "../../protocol/index.js";
import { createNamespace, deleteNamespace } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { deployApp, invoke, waitFinished } from "./support/trellis.js";

let op: OperatorProcess;
let ns = "";
const SOURCE = readFileSync(join(import.meta.dirname, "apps/timeouts.py"), "utf8");
const ENTRYPOINT = "sleeps";
/** The same code twice: once with the function's timeout raised in the spec, once as decorated. */
const RAISED = "timeouts-raised";
const DECORATED = "timeouts-decorated";
const raise: Pick<ApplicationSpec, "functions"> = { functions: [{ name: ENTRYPOINT, timeoutSeconds: 20 }] };

beforeAll(async () => {
  op = await startOperator("timeouts");
  ns = await createNamespace("timeouts");
  await deployApp(ns, RAISED, SOURCE, ENTRYPOINT, raise);
  await deployApp(ns, DECORATED, SOURCE, ENTRYPOINT);
});
afterAll(async () => {
  await deleteNamespace(ns);
  await op?.stop();
});

describe("per-attempt timeouts on the cluster", () => {
  it("an Application that raises a function's timeout lets its calls run past the decorator's", async () => {
    const req = await invoke(ns, RAISED, ENTRYPOINT, [5]);
    const status = await waitFinished(ns, req, 120_000);
    expect(status.error, `${JSON.stringify(status.error)}\n${op.tail()}`).toBeUndefined();
    expect(status.phase).toBe("Succeeded");
    expect(status.output?.value).toBe("slept 5 s");
    expect(status.attempts).toBe(1);
  });

  it("without the raise, the decorator's timeout stops the call: Failed with reason function_timeout", async () => {
    const req = await invoke(ns, DECORATED, ENTRYPOINT, [5]);
    const status = await waitFinished(ns, req, 120_000);
    expect(status.phase, op.tail()).toBe("Failed");
    expect(status.error?.reason).toBe("function_timeout");
    expect(status.error?.message).toMatch(/\b2(\.0+)?\s?(s|seconds)\b/);
  });
});
