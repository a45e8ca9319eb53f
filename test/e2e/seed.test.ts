// Every seed example end to end: its Application applied with inline source, a request created
// with kubectl, and the expected value read back from the root FunctionCall's status.output.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { appName, deployApp, invoke, requestCalls, seedCases, waitFinished } from "./support/trellis.js";

const { cases, failing, sources } = seedCases();
let op: OperatorProcess;
let ns = "";

beforeAll(async () => {
  op = await startOperator("seed");
  ns = await createNamespace("seed");
  for (const file of Object.keys(sources)) {
    const entry = [...cases, ...failing].find((c) => c.file === file)!.app;
    await deployApp(ns, appName(file), sources[file]!, entry);
  }
});
afterAll(async () => {
  await deleteNamespace(ns);
  await op?.stop();
});

describe("seed examples on the cluster", () => {
  it.each(cases.map((c) => [`${c.file} ${c.app}(${JSON.stringify(c.args).slice(1, -1)})`, c] as const))(
    "%s",
    async (_name, c) => {
      const req = await invoke(ns, appName(c.file), c.app, c.args);
      const status = await waitFinished(ns, req).catch((e: Error) => {
        throw new Error(`${e.message}\noperator log ${op.logPath}:\n${op.tail()}`);
      });
      expect(status.error, JSON.stringify(status.error)).toBeUndefined();
      expect(status.phase).toBe("Succeeded");
      expect(status.output?.value).toEqual(c.expected);
      const calls = await requestCalls(ns, req);
      expect(calls.every((k) => k.status.phase === "Succeeded" || k.status.phase === "Delegated")).toBe(true);
    },
  );

  it.each(failing.map((c) => [`${c.file} ${c.app} (verbatim, fails)`, c] as const))("%s", async (_name, c) => {
    const req = await invoke(ns, appName(c.file), c.app, c.args);
    const status = await waitFinished(ns, req);
    expect(status.phase).toBe("Failed");
    expect(status.error?.type).toBe("NameError");
    expect(status.error?.message).toContain("asyncio");
    expect(status.error?.traceback).toContain("Traceback");
    expect(status.error?.reason).toBe(c.expected);
  });
});
