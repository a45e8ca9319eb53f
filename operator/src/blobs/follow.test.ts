// The places the operator follows blob refs (HTTP output serving, map/reduce items of a list
// output) use the checker: foreign refs are never read, cycles and chains end with an error.
import { describe, expect, it } from "vitest";
import type { ValueRef } from "../../../protocol/index.js";
import { itemsOfDocument } from "../functioncall/values.js";
import { world } from "../http-api/fakes.js";
import { buildHttpApi } from "../http-api/index.js";
import { decodeOutput } from "../http-api/views.js";
import { BlobRefError } from "./check.js";

const scope = { namespace: "ns", request: "r" };
const docs = (m: Record<string, unknown>) => {
  const reads: string[] = [];
  const read = async (ref: string) => {
    reads.push(ref);
    return ref in m ? Buffer.from(JSON.stringify(m[ref])) : undefined;
  };
  return { reads, read };
};
const refused = async (out: ValueRef, m: Record<string, unknown>) => {
  const d = docs(m);
  const err = await decodeOutput(out, d.read, scope).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BlobRefError);
  return { bad: (err as BlobRefError).bad, reads: d.reads };
};

describe("decodeOutput follows refs of the request only, and never loops", () => {
  it("serves a list blob whose items are blobs of the same request", async () => {
    const d = docs({ "ns/r/a": { list: [{ value: 1 }, { blob: "ns/r/b" }] }, "ns/r/b": { value: [2] } });
    expect(await decodeOutput({ blob: "ns/r/a" }, d.read, scope)).toEqual({ kind: "json", value: [1, [2]] });
  });

  it("a self-referring blob is an error, not a loop", async () => {
    const { bad, reads } = await refused({ blob: "ns/r/a" }, { "ns/r/a": { list: [{ blob: "ns/r/a" }] } });
    expect(bad).toMatchObject({ rule: "cycle", path: "output.blob.list[0].blob" });
    expect(reads).toEqual(["ns/r/a"]);
  });

  it("a cycle through several blobs is an error", async () => {
    const m = { "ns/r/a": { list: [{ blob: "ns/r/b" }] }, "ns/r/b": { list: [{ value: 0 }, { blob: "ns/r/a" }] } };
    expect((await refused({ blob: "ns/r/a" }, m)).bad.message).toMatch(/refers back to itself/);
  });

  it("a nested ref of another namespace or request is refused before it is read", async () => {
    for (const foreign of ["other/r/x", "ns/r2/x", "ns/r/../r2/x"]) {
      const { bad, reads } = await refused(
        { blob: "ns/r/a" },
        { "ns/r/a": { list: [{ blob: foreign }] }, [foreign]: { value: "secret" } },
      );
      expect(bad.path).toBe("output.blob.list[0].blob");
      expect(reads).toEqual(["ns/r/a"]);
    }
    const inline = await refused({ list: [{ value: 1 }, { blob: "other/r/x" }] }, { "other/r/x": { value: "secret" } });
    expect(inline.bad).toMatchObject({ path: "output.list[1].blob", rule: "scope" });
    expect(inline.reads).toEqual([]);
  });

  it("a chain of blobs is capped", async () => {
    const m: Record<string, unknown> = {};
    for (let i = 0; i < 40; i++) m[`ns/r/${i}`] = { list: [{ blob: `ns/r/${i + 1}` }] };
    const { bad, reads } = await refused({ blob: "ns/r/0" }, m);
    expect(bad.rule).toBe("depth");
    expect(reads.length).toBeLessThanOrEqual(32);
  });

  it("a blob that holds no value document is refused", async () => {
    const d = { read: async () => Buffer.from("not json") };
    await expect(decodeOutput({ blob: "ns/r/a" }, d.read, scope)).rejects.toBeInstanceOf(BlobRefError);
  });
});

describe("itemsOfDocument checks the items of a list blob against the blob's own request", () => {
  const doc = (list: unknown[]) => Buffer.from(JSON.stringify({ list }));
  it("items of the same request pass", () => {
    expect(itemsOfDocument(doc([{ value: 1 }, { blob: "ns/r/b" }]), "ns/r/a")).toEqual({
      items: [{ value: 1 }, { blob: "ns/r/b" }],
    });
  });
  it("a foreign, traversing or self item is an error naming the item", () => {
    expect(itemsOfDocument(doc([{ value: 1 }, { blob: "other/r/x" }]), "ns/r/a")).toEqual({
      error: expect.stringMatching(/blob ns\/r\/a\.list\[1\]\.blob: must be a blob of namespace ns/),
    });
    expect(itemsOfDocument(doc([{ blob: "ns/r2/x" }]), "ns/r/a")).toEqual({
      error: expect.stringMatching(/must be a blob of request r/),
    });
    expect(itemsOfDocument(doc([{ list: [{ blob: "ns/r/../../x" }] }]), "ns/r/a")).toEqual({
      error: expect.stringMatching(/list\[0\]\.list\[0\]\.blob: blob ref must not contain/),
    });
    expect(itemsOfDocument(doc([{ blob: "ns/r/a" }]), "ns/r/a")).toEqual({
      error: expect.stringMatching(/lists itself as an item/),
    });
  });
});

describe("GET …/requests/:request/output", () => {
  it("answers 409 naming the ref and the rule for a self-referring or foreign output blob, and serves a good one", async () => {
    const w = world();
    const app = await buildHttpApi(w.deps);
    try {
      const base = "/v1/namespaces/team/applications/greet";
      const made = await app.inject({
        method: "POST",
        url: base,
        payload: "1",
        headers: { "content-type": "application/json" },
      });
      const id = (made.json() as { request_id: string }).request_id;
      const out = () => app.inject({ url: `${base}/requests/${id}/output` });
      w.blobs.set(`team/${id}/self`, Buffer.from(JSON.stringify({ list: [{ blob: `team/${id}/self` }] })));
      w.update(id, { phase: "Succeeded", output: { blob: `team/${id}/self` } });
      const self = await out();
      expect([self.statusCode, self.json().code]).toEqual([409, "invalid_output"]);
      expect(self.json().message).toMatch(/output\.blob\.list\[0\]\.blob: blob team\/\S+ refers back to itself/);
      w.blobs.set("other/x/y", Buffer.from(JSON.stringify({ value: "the-secret-value" })));
      w.update(id, { phase: "Succeeded", output: { list: [{ value: 1 }, { blob: "other/x/y" }] } });
      const foreign = await out();
      expect(foreign.statusCode).toBe(409);
      expect(foreign.body).not.toContain("the-secret-value");
      expect(foreign.json().message).toMatch(/output\.list\[1\]\.blob: must be a blob of namespace team/);
      w.blobs.set(`team/${id}/ok`, Buffer.from(JSON.stringify({ list: [{ value: 1 }] })));
      w.update(id, { phase: "Succeeded", output: { blob: `team/${id}/ok` } });
      expect((await out()).json()).toEqual([1]);
    } finally {
      await app.close();
    }
  });
});
