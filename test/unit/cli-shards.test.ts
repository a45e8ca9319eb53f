// The plugin on a map whose items live in shard FunctionCalls (DESIGN.md, "Map shards"): graph
// shows a row per item with its phase, duration, attempts and pod, never the shard; logs finds an
// item by name through its shard.
import { afterEach, describe, expect, it, vi } from "vitest";
import { type Call, CliError, type Ctx, expandCalls, findCall, requestCalls } from "../../cli/cluster.js";
import { graph, graphDocument, logs, treeRows } from "../../cli/graph.js";
import { KubeApiError, type KubeClient } from "../../cli/kube.js";
import { progressText } from "../../cli/requests.js";
import { LABEL, SHARD_ANNOTATION, itemName, labelValue, shardName } from "../../protocol/index.js";

const EPOCH = Date.parse("2026-01-01T00:00:00Z");
const NS = "team";

function call(name: string, spec: Partial<Call["spec"]> = {}, status: Call["status"] = {}): Call {
  return {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "FunctionCall",
    metadata: {
      name,
      namespace: NS,
      creationTimestamp: "2026-01-01T00:00:00Z",
      labels: spec.request ? { [LABEL.request]: labelValue(spec.request) } : {},
    },
    spec: { application: "greet", function: "hello", ...spec },
    status,
  } as Call;
}

const shard0 = shardName("r", "r-map", 0);
const shard1 = shardName("r", "r-map", 1);
const items = [0, 1, 2, 3].map((i) => itemName("r", "r-map", i));

/** Request r: a map of 4 items in two shards: Succeeded, Running, Failed, Pending. */
const objects: Call[] = [
  call("r", {}, { phase: "Running", attempts: 1, pod: "greet-hello-1", startTime: "2026-01-01T00:00:00Z" }),
  call(
    "r-map",
    { parent: "r", request: "r", sequence: 0, function: "double", map: { items: [] } as never },
    {
      phase: "Running",
    },
  ),
  call(
    shard0,
    {
      function: "double",
      parent: "r-map",
      request: "r",
      sequence: 0,
      shard: { offset: 0, items: [{ value: 1 }, { value: 2 }, { value: 3 }] },
    },
    {
      phase: "Running",
      epoch: EPOCH,
      pods: ["pod-a", "pod-b"],
      items: [
        { p: "S", a: 1, w: 0, s: 10, c: 25, o: { value: 2 } },
        { p: "R", a: 2, w: 1, s: 30 },
        { p: "F", a: 3, w: 0, s: 40, c: 1540, e: { type: "ValueError", message: "three" } },
      ],
    },
  ),
  call(shard1, {
    function: "double",
    parent: "r-map",
    request: "r",
    sequence: 1,
    shard: { offset: 3, items: [{ value: 4 }] },
  }),
];

/** A context whose client answers from `objects` as the API server would. */
function fakeCtx(): { ctx: Ctx; paths: string[] } {
  const paths: string[] = [];
  const FC = `/apis/trellis.dev/v1alpha1/namespaces/${NS}/functioncalls`;
  const client = {
    request: async (method: string, path: string, opts: { query?: Record<string, string> } = {}) => {
      paths.push(`${method} ${path}`);
      if (path === "/apis/trellis.dev/v1alpha1")
        return { resources: [{ name: "functioncalls" }, { name: "applications" }] };
      if (path === FC) {
        const sel = opts.query?.labelSelector ?? "";
        return {
          items: objects.filter((o) => `${LABEL.request}=${o.metadata.labels?.[LABEL.request]}` === sel),
          metadata: { resourceVersion: "1" },
        };
      }
      const found = objects.find((o) => `${FC}/${o.metadata.name}` === path);
      if (!found) throw new KubeApiError(404, "NotFound", `${method} ${path}: not found`);
      return found;
    },
    stream: async () => {
      throw new Error("no stream");
    },
  } as unknown as KubeClient;
  return { ctx: { client, namespace: NS, server: "https://fake", operatorNamespace: "trellis-system" }, paths };
}

afterEach(() => vi.restoreAllMocks());

describe("a sharded map in the plugin", () => {
  it("lists each item as a call of the request, never the shard", async () => {
    const { ctx } = fakeCtx();
    const calls = await requestCalls(ctx, "r");
    expect(calls.map((c) => c.metadata.name)).toEqual(["r", "r-map", ...items]);
    expect(calls[2]!.metadata.annotations?.[SHARD_ANNOTATION]).toBe(shard0);
    // The same shard object is decoded once.
    expect(expandCalls(objects)[2]).toBe(expandCalls(objects)[2]);
  });

  it("draws a row per item with phase, duration, attempts and pod", async () => {
    const { ctx } = fakeCtx();
    const calls = await requestCalls(ctx, "r");
    const rows = treeRows(calls, "r", EPOCH + 1030);
    expect(rows).toEqual([
      ["r", "hello", "Running", "1.0s", "1", "greet-hello-1"],
      ["└─ r-map", "double (map)", "Running", "1.0s", "0", "-"],
      [`   ├─ ${items[0]}`, "double", "Succeeded", "15ms", "1", "pod-a"],
      [`   ├─ ${items[1]}`, "double", "Running", "1.0s", "2", "pod-b"],
      [`   ├─ ${items[2]}`, "double", "Failed", "1.5s", "3", "pod-a"],
      [`   └─ ${items[3]}`, "double", "Pending", "1.0s", "0", "-"],
    ]);
    const doc = graphDocument(calls, "r", EPOCH + 1030);
    expect(doc.calls.map((c) => c.name)).not.toContain(shard0);
    expect(doc.calls[4]).toMatchObject({
      name: items[2],
      parent: "r-map",
      depth: 2,
      phase: "Failed",
      duration: "1.5s",
      attempts: 3,
      pod: "pod-a",
      error: { type: "ValueError", message: "three" },
    });

    const out: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((s) => {
      out.push(String(s));
      return true;
    });
    expect(await graph(ctx, "r")).toBe(0);
    const text = out.join("");
    expect(text).toMatch(/^CALL\s+FUNCTION\s+PHASE\s+DURATION\s+ATTEMPTS\s+POD\n/);
    for (const name of items) expect(text).toContain(name);
    expect(text).toMatch(new RegExp(`${items[0]}\\s+double\\s+Succeeded\\s+15ms\\s+1\\s+pod-a`));
    expect(text).toMatch(new RegExp(`${items[2]}\\s+double\\s+Failed\\s+1\\.5s\\s+3\\s+pod-a`));
    expect(text).not.toContain(shard0);
    expect(text).not.toContain(shard1);
  });

  it("finds an item by name through its shard; a shard is not a call", async () => {
    const { ctx } = fakeCtx();
    const item = await findCall(ctx, items[1]!);
    expect(item).toMatchObject({
      metadata: { name: items[1] },
      spec: { parent: "r-map", request: "r", sequence: 1, args: [{ value: 2 }] },
      status: { phase: "Running", attempts: 2, pod: "pod-b" },
    });
    expect((await findCall(ctx, "r-map")).metadata.name).toBe("r-map");
    await expect(findCall(ctx, shard0)).rejects.toThrow(`${shard0} is not a call but a shard of map r-map`);
    await expect(findCall(ctx, itemName("r", "r-map", 9))).rejects.toThrow(CliError);
    await expect(findCall(ctx, "nope")).rejects.toThrow("FunctionCall nope not found in namespace team");
    // logs reads the pod of the item (the fake has no log stream: the error names the pod).
    await expect(logs(ctx, items[1]!, {})).rejects.toThrow("cannot read the logs of pod pod-b");
    await expect(logs(ctx, items[3]!, {})).rejects.toThrow(`call ${items[3]} has not run on a pod yet (phase Pending)`);
  });

  it("counts each item in the progress line of invoke", () => {
    const calls = new Map(objects.map((c) => [c.metadata.name ?? "", c]));
    expect(progressText("r", calls, Date.now())).toMatch(
      /^r Running · calls 6 \(3 running, 1 succeeded, 1 failed, 1 pending\) · [\d.]+s$/,
    );
  });

  it("draws a 100,000-item map without quadratic work or too many arguments", () => {
    const big: Call[] = [objects[0]!, objects[1]!];
    for (let j = 0; j < 200; j++)
      big.push(
        call(shardName("r", "r-map", j), {
          function: "double",
          parent: "r-map",
          request: "r",
          sequence: j,
          shard: { offset: j * 500, items: Array.from({ length: 500 }, (_, i) => ({ value: i })) },
        }),
      );
    const started = Date.now();
    const rows = treeRows(expandCalls(big), "r", EPOCH);
    expect(rows.length).toBe(100_002);
    expect(rows[100_001]![0]).toContain(itemName("r", "r-map", 99_999));
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 30_000);
});
