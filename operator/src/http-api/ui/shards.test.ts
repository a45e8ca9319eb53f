// The web view's routes on a map whose items live in shard FunctionCalls (DESIGN.md, "Map
// shards"): each item shows as a call of its own, with its phase, attempts, pod and times, is found
// by name, and a shard never shows as a call.
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { SHARD_ANNOTATION, itemName, shardName } from "../../../../protocol/index.js";
import { world } from "../fakes.js";
import { buildHttpApi } from "../index.js";
import { ShardReader } from "../shards.js";
import type { CallObject } from "../types.js";
import { requestGraph } from "./graph.js";

const BASE = "/v1/namespaces/team/applications/greet";
const EPOCH = Date.parse("2026-01-01T00:00:00Z");
let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

function call(name: string, spec: Partial<CallObject["spec"]> = {}, status: CallObject["status"] = {}): CallObject {
  return {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "FunctionCall",
    metadata: { name, namespace: "team", creationTimestamp: "2026-01-01T00:00:00Z", uid: `uid-${name}` },
    spec: { application: "greet", function: "hello", ...spec },
    status,
  } as CallObject;
}

/** Shard j of map `map` of request `request`: `n` items from `offset`, states `items` (entries). */
function shard(
  request: string,
  map: string,
  j: number,
  offset: number,
  n: number,
  status: CallObject["status"] = {},
): CallObject {
  return call(
    shardName(request, map, j),
    {
      function: "double",
      parent: map,
      request,
      sequence: j,
      shard: { offset, items: Array.from({ length: n }, (_, i) => ({ value: offset + i })) },
    },
    { epoch: EPOCH, ...status },
  );
}

/** Request r: a map r-map of 5 items in two shards; items 0–2 Succeeded, Running and Failed, 3–4 Pending. */
function mapRequest() {
  const w = world();
  w.calls.put(call("r", {}, { phase: "Running", attempts: 1, pod: "greet-hello-1" }));
  w.calls.put(
    call(
      "r-map",
      { parent: "r", request: "r", sequence: 0, function: "double", map: { items: [] } as never },
      {
        phase: "Running",
      },
    ),
  );
  const first = shard("r", "r-map", 0, 0, 3, {
    phase: "Running",
    pods: ["pod-a", "pod-b"],
    items: [
      { p: "S", a: 1, w: 0, s: 10, c: 25, o: { value: 2 } },
      { p: "R", a: 2, w: 1, s: 30 },
      { p: "F", a: 3, w: 0, s: 40, c: 90, e: { type: "ValueError", message: "three" } },
    ],
    itemCounts: { total: 3, succeeded: 1, failed: 1, running: 1 },
  });
  const second = shard("r", "r-map", 1, 3, 2);
  w.calls.put(first);
  w.calls.put(second);
  const names = [0, 1, 2, 3, 4].map((i) => itemName("r", "r-map", i));
  return { w, first, second, names };
}

describe("web view routes on a sharded map", () => {
  it("shows each item with its phase, attempts, pod and times, and no shard", async () => {
    const { w, first, second, names } = mapRequest();
    app = await buildHttpApi(w.deps);
    const body = (await app.inject({ url: `${BASE}/requests/r/calls` })).json();
    const shown: string[] = body.calls.map((c: { name: string }) => c.name);
    expect(shown).not.toContain(first.metadata.name);
    expect(shown).not.toContain(second.metadata.name);
    const map = body.calls.find((c: { name: string }) => c.name === "r-map");
    expect(map.items).toEqual({ total: 5, phases: { Succeeded: 1, Running: 1, Failed: 1, Pending: 2 } });
    // The failed item stays a node, as an item object would.
    expect(body.calls.find((c: { name: string }) => c.name === names[2])).toMatchObject({
      function: "double",
      kind: "call",
      parent: "r-map",
      sequence: 2,
      phase: "Failed",
      attempts: 3,
      pod: "pod-a",
      started_at: EPOCH + 40,
      finished_at: EPOCH + 90,
      error: { type: "ValueError", message: "three" },
    });
    expect(body.hidden).toBe(4); // the other four items
  });

  it("pages the items in order across shards, each with phase, attempts, pod and times", async () => {
    const { w, names } = mapRequest();
    app = await buildHttpApi(w.deps);
    const all = (await app.inject({ url: `${BASE}/requests/r/calls/r-map/items` })).json();
    expect(all).toMatchObject({ call: "r-map", total: 5, offset: 0, limit: 50 });
    expect(all.items).toEqual([
      {
        index: 0,
        name: names[0],
        phase: "Succeeded",
        attempts: 1,
        pod: "pod-a",
        started_at: EPOCH + 10,
        finished_at: EPOCH + 25,
        error: null,
      },
      {
        index: 1,
        name: names[1],
        phase: "Running",
        attempts: 2,
        pod: "pod-b",
        started_at: EPOCH + 30,
        finished_at: null,
        error: null,
      },
      {
        index: 2,
        name: names[2],
        phase: "Failed",
        attempts: 3,
        pod: "pod-a",
        started_at: EPOCH + 40,
        finished_at: EPOCH + 90,
        error: { type: "ValueError", message: "three" },
      },
      {
        index: 3,
        name: names[3],
        phase: "Pending",
        attempts: 0,
        pod: null,
        started_at: null,
        finished_at: null,
        error: null,
      },
      {
        index: 4,
        name: names[4],
        phase: "Pending",
        attempts: 0,
        pod: null,
        started_at: null,
        finished_at: null,
        error: null,
      },
    ]);
    const page = (await app.inject({ url: `${BASE}/requests/r/calls/r-map/items?offset=2&limit=2` })).json();
    expect(page.items.map((i: { index: number; name: string }) => [i.index, i.name])).toEqual([
      [2, names[2]],
      [3, names[3]],
    ]);
    expect((await app.inject({ url: `${BASE}/requests/r/calls/r-map/items?offset=5` })).json().items).toEqual([]);
    // An item is a call of the request: it has no items of its own.
    expect((await app.inject({ url: `${BASE}/requests/r/calls/${names[1]}/items` })).json().total).toBe(0);
  });

  it("finds an item by name for its logs; a shard is not a call", async () => {
    const { w, first, names } = mapRequest();
    w.podLogs.set("team/pod-b", "item 1 running\n");
    app = await buildHttpApi(w.deps);
    const r = await app.inject({ url: `${BASE}/requests/r/calls/${names[1]}/logs` });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({ call: names[1], pod: "pod-b", text: "item 1 running\n" });
    const pending = await app.inject({ url: `${BASE}/requests/r/calls/${names[4]}/logs` });
    expect(pending.statusCode).toBe(409);
    expect(pending.json().message).toBe(`call ${names[4]} has not run on a pod yet (phase Pending): no logs`);
    const asCall = await app.inject({ url: `${BASE}/requests/r/calls/${first.metadata.name}/logs` });
    expect(asCall.statusCode).toBe(404);
    expect((await app.inject({ url: `${BASE}/requests/r/calls/${first.metadata.name}/items` })).statusCode).toBe(404);
    // An item of another request is not one of this request's calls.
    w.calls.put(call("q", {}, { phase: "Running" }));
    expect((await app.inject({ url: `${BASE}/requests/q/calls/${names[1]}/logs` })).statusCode).toBe(404);
  });

  it("names the function of a map item that raised the request's error", async () => {
    const { w, names } = mapRequest();
    w.update("r", {
      phase: "Failed",
      error: { type: "RequestError", message: "stop", reason: "request_error", cause: names[2] },
    });
    app = await buildHttpApi(w.deps);
    const r = (await app.inject({ url: `${BASE}/requests/r` })).json();
    expect(r.request_error).toEqual({ message: "stop", function_name: "double" });
  });

  it("redraws the live graph as a shard's items move", async () => {
    const { w, first, names } = mapRequest();
    app = await buildHttpApi(w.deps);
    await app.listen({ host: "127.0.0.1", port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const res = await fetch(`http://127.0.0.1:${port}${BASE}/requests/r/calls/events`);
    const reader = res.body!.getReader();
    let text = "";
    const readUntil = async (s: string) => {
      while (!text.includes(s)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    };
    try {
      await readUntil('"Pending":2');
      // Item 1 fails: the shard object is replaced, the graph counts it and shows it.
      w.update(first.metadata.name!, {
        items: [
          { p: "S", a: 1, w: 0, s: 10, c: 25, o: { value: 2 } },
          { p: "F", a: 2, w: 1, s: 30, c: 60, e: { type: "KeyError", message: "one" } },
          { p: "F", a: 3, w: 0, s: 40, c: 90, e: { type: "ValueError", message: "three" } },
        ],
      });
      await readUntil(`"name":"${names[1]}"`);
      expect(text).toContain('"phases":{"Pending":2,"Succeeded":1,"Failed":2}');
      expect(text).not.toContain(`"name":"${first.metadata.name}"`);
    } finally {
      await reader.cancel();
    }
  });
});

describe("ShardReader", () => {
  it("decodes an unchanged shard once, and names it once while it is recently read", () => {
    const { first } = mapRequest();
    const reader = new ShardReader(4);
    const a = reader.expand([first]);
    expect(a.map((c) => c.metadata.annotations?.[SHARD_ANNOTATION])).toEqual([
      first.metadata.name,
      first.metadata.name,
      first.metadata.name,
    ]);
    expect(reader.expand([first])[0]).toBe(a[0]);
    const names = reader.namesOf(first);
    const changed = { ...first, status: { ...first.status, items: [] } } as CallObject;
    expect(reader.expand([changed])[0]).not.toBe(a[0]);
    expect(reader.expand([changed])[0]!.status).toBeUndefined();
    expect(reader.namesOf(changed)).toBe(names);
    // A bound of 4 names: a second 3-item shard pushes the first one's names out.
    const other = shard("r", "r-other", 0, 0, 3);
    reader.namesOf(other);
    expect(reader.heldNames()).toBe(3);
    expect(reader.namesOf(first)).not.toBe(names);
    expect(reader.namesOf(first)).toEqual(names);
  });

  it("pages children made of shards and objects in sequence order, decoding only the page", () => {
    const objects = [
      shard("r", "m", 1, 2, 3), // items 2–4
      call("m-5", { parent: "m", request: "r", sequence: 5 }),
      shard("r", "m", 0, 0, 2), // items 0–1
      call("other", { parent: "x", request: "r", sequence: 0 }),
    ];
    const reader = new ShardReader();
    const seqs = (offset: number, limit: number) => {
      const { total, page } = reader.children(objects, "m", offset, limit);
      return [total, page.map((c) => c.spec.sequence)];
    };
    expect(seqs(0, 50)).toEqual([6, [0, 1, 2, 3, 4, 5]]);
    expect(seqs(1, 2)).toEqual([6, [1, 2]]);
    expect(seqs(3, 2)).toEqual([6, [3, 4]]);
    expect(seqs(4, 10)).toEqual([6, [4, 5]]);
    expect(seqs(6, 10)).toEqual([6, []]);
  });

  it("leaves no shard in a graph given one", () => {
    const { first, second } = mapRequest();
    const g = requestGraph([
      call("r"),
      call("r-map", { parent: "r", request: "r", sequence: 0, map: { items: [] } as never }),
      first,
      second,
    ]);
    expect(g.calls.find((c) => c.name === "r-map")!.items!.total).toBe(5);
    expect(g.calls.some((c) => c.name === first.metadata.name || c.name === second.metadata.name)).toBe(false);
    // What a folded item called is hidden with it; what a kept (failed) item called is drawn.
    const [folded, failed] = [itemName("r", "r-map", 0), itemName("r", "r-map", 2)];
    const under = requestGraph([
      call("r"),
      call("r-map", { parent: "r", request: "r", sequence: 0, map: { items: [] } as never }),
      first,
      second,
      call("r-under-folded", { parent: folded, request: "r", sequence: 0 }),
      call("r-under-failed", { parent: failed, request: "r", sequence: 0 }),
    ]);
    const drawn = under.calls.map((c) => c.name).sort();
    expect(drawn).toEqual(["r", "r-map", failed, "r-under-failed"].sort());
    expect(under.hidden).toBe(5);
  });
});
