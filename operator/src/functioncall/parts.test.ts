import { describe, expect, it } from "vitest";
import { itemName, shardName } from "../../../protocol/index.js";
import { CallGraph } from "./graph.js";
import { mkCall, mkChild } from "./testing.js";
import { Waiters } from "./waiters.js";

describe("CallGraph", () => {
  it("keeps the newest version: an older watch event after our write response is ignored", () => {
    const g = new CallGraph();
    const seen: string[] = [];
    g.onChange((k, prev, next) =>
      seen.push(`${k}:${prev?.metadata.resourceVersion ?? "-"}→${next?.metadata.resourceVersion ?? "-"}`),
    );
    const v5 = mkCall("a", {}, undefined, { resourceVersion: "5" });
    const v7 = mkCall("a", {}, { phase: "Running" }, { resourceVersion: "7" });
    expect(g.observe(v5)).toBe(true);
    expect(g.observe(v7)).toBe(true);
    expect(g.observe(mkCall("a", {}, { phase: "Queued" }, { resourceVersion: "6" }))).toBe(false);
    expect(g.observe(mkCall("a", {}, { phase: "Running" }, { resourceVersion: "7" }))).toBe(false);
    expect(g.get("ns", "a")!.status?.phase).toBe("Running");
    expect(seen).toEqual(["ns/a:-→5", "ns/a:5→7"]);
    g.remove(mkCall("a", {}, undefined, { resourceVersion: "8" }));
    expect(g.observe(v7)).toBe(false); // a late response of a deleted object does not revive it
    expect(seen.at(-1)).toBe("ns/a:7→-");
  });

  it("indexes children, requests, dependents, delegators and request errors", () => {
    const g = new CallGraph();
    g.observe(mkCall("r"));
    g.observe(mkChild("c1", "r", "r", 0, { args: [{ call: "c0" }], kwargs: { k: { call: "c9" } } }));
    g.observe(mkChild("m", "r", "r", 1, { map: { itemsFrom: "c1", items: undefined } }));
    g.observe(mkChild("rd", "r", "r", 2, { reduce: { items: [{ call: "c2" }], initial: { call: "c3" } } }));
    g.observe(mkChild("d", "r", "r", 3, {}, { phase: "Delegated", tailCall: "t" }));
    expect(g.childrenOf("ns", "r").sort()).toEqual(["c1", "d", "m", "rd"]);
    expect(g.callsOfRequest("ns", "r").sort()).toEqual(["c1", "d", "m", "r", "rd"]);
    expect(g.dependentsOf("ns", "c0")).toEqual(["c1"]);
    expect(g.dependentsOf("ns", "c9")).toEqual(["c1"]);
    expect(g.dependentsOf("ns", "c1")).toEqual(["m"]);
    expect(g.dependentsOf("ns", "c2")).toEqual(["rd"]);
    expect(g.dependentsOf("ns", "c3")).toEqual(["rd"]);
    expect(g.delegatorsOf("ns", "t")).toEqual(["d"]);
    expect(g.requestErrorOf("ns", "r")).toBeUndefined();
    g.observe(
      mkChild(
        "c1",
        "r",
        "r",
        0,
        {},
        { phase: "Failed", error: { type: "RequestError", message: "m", reason: "request_error" } },
      ),
    );
    expect(g.requestErrorOf("ns", "r")).toBe("c1");
    expect(g.dependentsOf("ns", "c0")).toEqual([]);
  });
  it("lists a shard's items as children and calls of the request, reads their outputs, forgets them with the shard", () => {
    const g = new CallGraph();
    g.observe(mkCall("r"));
    g.observe(mkChild("m", "r", "r", 0, { map: { items: [{ value: 1 }, { value: 2 }, { value: 3 }] } }));
    const shard = (j: number, offset: number, n: number, entries: object[] = [], rv = "1") =>
      mkCall(
        shardName("r", "m", j),
        {
          parent: "m",
          request: "r",
          sequence: j,
          function: "g",
          shard: { offset, items: Array.from({ length: n }, (_, i) => ({ value: offset + i })) },
        },
        { items: entries, epoch: 0 },
        { resourceVersion: rv },
      );
    g.observe(shard(0, 0, 2));
    g.observe(shard(1, 2, 1));
    const items = [0, 1, 2].map((i) => itemName("r", "m", i));
    expect(g.childrenOf("ns", "m").sort()).toEqual([...items].sort());
    expect(g.callsOfRequest("ns", "r").sort()).toEqual(["m", "r", ...items].sort());
    expect(g.childStats("ns", "m")).toEqual({ count: 3, succeeded: 0, failed: undefined });
    expect(g.get("ns", items[2]!)?.spec.args).toEqual([{ value: 2 }]);
    expect(g.itemRef(`ns/${items[2]}`)).toEqual({ shard: `ns/${shardName("r", "m", 1)}`, index: 0 });
    expect(g.childOutputs("ns", "m", 3)).toBeUndefined();
    g.observe(shard(0, 0, 2, [{ p: "S", o: { value: 10 } }, { p: "S" }], "2"));
    expect(g.childOutputs("ns", "m", 3)).toBeUndefined(); // item 2 has not Succeeded
    const phases = g.countByPhase();
    expect(phases.get("ns\0app\0g\0Succeeded")).toBe(2);
    expect(phases.get("ns\0app\0g\0Pending")).toBe(1);
    g.observe(shard(1, 2, 1, [{ p: "S", o: { blob: "b" } }], "3"));
    expect(g.childStats("ns", "m")).toEqual({ count: 3, succeeded: 3, failed: undefined });
    expect(g.childOutputs("ns", "m", 3)).toEqual([{ value: 10 }, { value: null }, { blob: "b" }]);
    g.remove(shard(0, 0, 2, [], "4"));
    expect(g.childrenOf("ns", "m")).toEqual([items[2]]);
    expect(g.get("ns", items[0]!)).toBeUndefined();
    expect(g.itemRef(`ns/${items[0]}`)).toBeUndefined();
    expect(g.childOutputs("ns", "m", 3)).toBeUndefined();
    // The freed slot serves the next shard seen.
    g.observe(shard(0, 0, 2, [], "5"));
    expect(g.itemRef(`ns/${items[1]}`)).toEqual({ shard: `ns/${shardName("r", "m", 0)}`, index: 1 });
    expect(g.childrenOf("ns", "m").sort()).toEqual([...items].sort());
  });
});

describe("Waiters", () => {
  const calls = new Map<string, ReturnType<typeof mkCall>>();
  const w = new Waiters((_ns, n) => calls.get(n));
  it("any: resolved by the first outcome; all: by the last; deadline: what finished so far", async () => {
    calls.set("a", mkCall("a", {}, { phase: "Running" }));
    calls.set("b", mkCall("b", {}, { phase: "Running" }));
    const any = w.wait("ns", ["a", "b"], "any", 5000);
    const all = w.wait("ns", ["a", "b", "a"], "all", 5000);
    const timed = w.wait("ns", ["a", "b"], "all", 20);
    calls.set("b", mkCall("b", {}, { phase: "Succeeded", output: { value: 2 } }));
    w.notify("ns", "b");
    expect(await any).toEqual([{ call: "b", phase: "Succeeded", output: { value: 2 } }]);
    expect(await timed).toEqual([{ call: "b", phase: "Succeeded", output: { value: 2 } }]);
    calls.delete("a");
    w.notify("ns", "a");
    expect((await all).map((o) => [o.call, o.phase])).toEqual([
      ["a", "Cancelled"],
      ["b", "Succeeded"],
    ]);
    expect(w.size()).toBe(0);
  });
});

describe("list outputs read from blobs (itemsFrom)", () => {
  it("a blob document of any size: value arrays and list forms split into items", async () => {
    const { itemsOfDocument } = await import("./values.js");
    const bigPickle = "A".repeat(200_000);
    expect(itemsOfDocument(Buffer.from(JSON.stringify({ list: [{ pickle: bigPickle }, { value: 1 }] })))).toEqual({
      items: [{ pickle: bigPickle }, { value: 1 }],
    });
    expect(itemsOfDocument(Buffer.from(JSON.stringify({ value: [1, 2] })))).toEqual({
      items: [{ value: 1 }, { value: 2 }],
    });
    expect(itemsOfDocument(Buffer.from(JSON.stringify({ pickle: bigPickle })))).toMatchObject({
      error: expect.stringMatching(/pickled/),
    });
    expect(itemsOfDocument(Buffer.from("{}"))).toMatchObject({ error: expect.any(String) });
    expect(itemsOfDocument(Buffer.from("nope"))).toMatchObject({ error: expect.any(String) });
  });
});
