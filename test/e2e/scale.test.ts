// Scale on the cluster: a 1,000-deep tail-call chain and a 2,000-item map complete.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNamespace, deleteNamespace, kubectl } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { deployApp, invoke, waitFinished } from "./support/trellis.js";

let op: OperatorProcess;
let ns = "";
const APP = "scale";

beforeAll(async () => {
  op = await startOperator("scale");
  ns = await createNamespace("scale");
  await deployApp(ns, APP, readFileSync(join(import.meta.dirname, "apps/scale.py"), "utf8"), "chain", {
    functions: [{ name: "square", maxContainers: 2, concurrency: 16 }],
  });
});
afterAll(async () => {
  await deleteNamespace(ns);
  await op?.stop();
});

async function countCalls(fn: string): Promise<number> {
  const out = await kubectl(["get", "fc", "-n", ns, "-l", `trellis.dev/function=${fn}`, "-o", "name"]);
  return out.split("\n").filter(Boolean).length;
}

describe("scale on the cluster", () => {
  it("a 1,000-deep tail-call chain completes", async () => {
    const req = await invoke(ns, APP, "chain", [1000]);
    const status = await waitFinished(ns, req, 280_000);
    expect(status.error, JSON.stringify(status.error)).toBeUndefined();
    expect(status.output?.value).toBe((1000 * 1001) / 2);
    expect(await countCalls("countdown")).toBe(1001);
  });

  it("a 2,000-item map completes with its outputs in input order", async () => {
    const req = await invoke(ns, APP, "squares", [2000]);
    const status = await waitFinished(ns, req, 280_000);
    expect(status.error, JSON.stringify(status.error)).toBeUndefined();
    expect(status.output?.value).toBe((1999 * 2000 * 3999) / 6);
    // The map call itself plus four shards of 500 items, not one object per item; the shards'
    // columns count their items.
    expect(await countCalls("square")).toBe(1 + 4);
    const table = await kubectl(["get", "fc", "-n", ns, "-l", "trellis.dev/function=square", "--no-headers"]);
    const shardRows = table.split("\n").filter((l) => / 500 +500 +0 +0 /.test(l));
    expect(shardRows.length, table).toBe(4);
  });
});
