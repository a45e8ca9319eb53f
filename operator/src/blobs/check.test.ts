import { describe, expect, it } from "vitest";
import { BlobRefError, RefTrail, checkValueRefs, refOutsideScope, scopeOfRef } from "./check.js";

const scope = { namespace: "ns", request: "r1" };
const deep = (n: number, leaf: unknown): unknown => {
  let v = leaf;
  for (let i = 0; i < n; i++) v = { list: [v] };
  return v;
};

describe("checkValueRefs", () => {
  it("accepts refs of the value's own request at any allowed depth, and values without refs", () => {
    expect(checkValueRefs({ blob: "ns/r1/a" }, scope)).toBeUndefined();
    expect(checkValueRefs({ blob: "ns/r1/state/k" }, scope)).toBeUndefined();
    expect(checkValueRefs({ list: [{ value: 1 }, { list: [{ blob: "ns/r1/b" }] }] }, scope)).toBeUndefined();
    // Inline JSON is data: a "blob" key inside {value} is no ref.
    expect(checkValueRefs({ value: { blob: "other/r/x" } }, scope)).toBeUndefined();
    expect(checkValueRefs(deep(32, { blob: "ns/r1/a" }), scope)).toBeUndefined();
  });

  const refused: [string, unknown, string, string, RegExp][] = [
    ["another namespace", { blob: "other/r1/a" }, "v.blob", "scope", /must be a blob of namespace ns/],
    ["another request", { blob: "ns/r2/a" }, "v.blob", "scope", /must be a blob of request r1 \(under "ns\/r1\/"\)/],
    ["a prefix of the request's name", { blob: "ns/r10/a" }, "v.blob", "scope", /request r1/],
    ["the request's prefix alone", { blob: "ns/r1" }, "v.blob", "scope", /request r1/],
    ["a traversal", { blob: "ns/r1/../r2/a" }, "v.blob", "ref", /'\.' or '\.\.' segments/],
    ["a dot segment", { blob: "ns/./r1/a" }, "v.blob", "ref", /'\.' or '\.\.' segments/],
    ["an absolute path", { blob: "/ns/r1/a" }, "v.blob", "ref", /none empty/],
    ["an empty segment", { blob: "ns//r1/a" }, "v.blob", "ref", /none empty/],
    ["a trailing slash", { blob: "ns/r1/" }, "v.blob", "ref", /none empty/],
    ["an empty ref", { blob: "" }, "v.blob", "ref", /none empty/],
    ["a backslash", { blob: "ns/r1/..\\x" }, "v.blob", "ref", /segments of letters/],
    ["a ref over 512 characters", { blob: `ns/r1/${"a".repeat(510)}` }, "v.blob", "ref", /at most 512/],
    ["a ref that is no string", { blob: 7 }, "v.blob", "shape", /must be a string/],
    ["a list that is no array", { list: { 0: {} } }, "v.list", "shape", /array of values/],
    ["an item that is no object", { list: [1] }, "v.list[0]", "shape", /must be an object/],
    [
      "a foreign ref nested in a list",
      { list: [{ value: 1 }, { value: 2 }, { value: 3 }, { list: [{ blob: "other/r1/x" }] }] },
      "v.list[3].list[0].blob",
      "scope",
      /namespace ns/,
    ],
    ["lists nested past the cap", deep(33, { value: 1 }), `v${".list[0]".repeat(32)}.list`, "depth", /deeper than 32/],
  ];
  for (const [name, value, path, rule, message] of refused)
    it(`refuses ${name}, naming the path and the rule`, () => {
      const bad = checkValueRefs(value, scope, undefined, "v");
      expect(bad).toMatchObject({ path, rule });
      expect(bad!.message.startsWith(`${path}: `)).toBe(true);
      expect(bad!.message).toMatch(message);
    });

  it("caps the refs of one value", () => {
    const v = { list: Array.from({ length: 4 }, (_, i) => ({ blob: `ns/r1/${i}` })) };
    expect(checkValueRefs(v, scope, { maxDepth: 32, maxRefs: 4 })).toBeUndefined();
    expect(checkValueRefs(v, scope, { maxDepth: 32, maxRefs: 3 })).toMatchObject({
      path: "value.list[3].blob",
      rule: "count",
    });
  });

  it("asks a scope getter only when a ref is met", () => {
    let asked = 0;
    const getter = () => (asked++, scope);
    expect(checkValueRefs({ list: [{ value: 1 }] }, getter)).toBeUndefined();
    expect(asked).toBe(0);
    expect(checkValueRefs({ blob: "ns/r1/a" }, getter)).toBeUndefined();
    expect(asked).toBe(1);
  });
});

describe("refs and scopes", () => {
  it("scopeOfRef names the namespace and request of a well-formed ref", () => {
    expect(scopeOfRef("ns/r1/x")).toEqual(scope);
    expect(scopeOfRef("ns/r1")).toBeUndefined();
    expect(scopeOfRef("ns/../x")).toBeUndefined();
    expect(refOutsideScope("ns/r1/x", scope)).toBeUndefined();
  });
});

describe("RefTrail: following refs", () => {
  const threw = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(BlobRefError);
      return (e as BlobRefError).bad;
    }
    throw new Error("did not throw");
  };

  it("detects a blob that refers back to itself, directly or through others", () => {
    const t = RefTrail.start(scope).enter("ns/r1/a", "output.blob");
    expect(threw(() => t.enter("ns/r1/a", "output.blob.blob"))).toMatchObject({ rule: "cycle" });
    const t2 = t.enter("ns/r1/b", "x").enter("ns/r1/c", "y");
    expect(threw(() => t2.enter("ns/r1/a", "z")).message).toMatch(
      /refers back to itself \(through ns\/r1\/a -> ns\/r1\/b -> ns\/r1\/c\)/,
    );
  });

  it("a blob read twice on separate branches is no cycle, but the reads of one value are capped", () => {
    const t = RefTrail.start(scope, { maxDepth: 32, maxRefs: 3 });
    t.enter("ns/r1/a", "l[0]");
    t.enter("ns/r1/a", "l[1]");
    t.enter("ns/r1/a", "l[2]");
    expect(threw(() => t.enter("ns/r1/a", "l[3]"))).toMatchObject({ path: "l[3]", rule: "count" });
  });

  it("caps chains of blobs and nesting of lists", () => {
    let t = RefTrail.start(scope, { maxDepth: 3, maxRefs: 100 });
    for (let i = 0; i < 3; i++) t = t.enter(`ns/r1/${i}`, `p${i}`);
    expect(threw(() => t.enter("ns/r1/9", "p3"))).toMatchObject({ rule: "depth" });
    let n = RefTrail.start(scope, { maxDepth: 2, maxRefs: 100 });
    n = n.nest("a").nest("b");
    expect(threw(() => n.nest("c"))).toMatchObject({ path: "c", rule: "depth" });
  });

  it("refuses foreign and malformed refs before anything is read", () => {
    const t = RefTrail.start(scope);
    expect(threw(() => t.enter("other/r1/a", "output.blob"))).toMatchObject({ rule: "scope" });
    expect(threw(() => t.enter("ns/r2/a", "output.blob"))).toMatchObject({ rule: "scope" });
    expect(threw(() => t.enter("ns/r1/../../etc", "output.blob"))).toMatchObject({ rule: "ref" });
    expect(threw(() => t.enter(5, "output.blob"))).toMatchObject({ rule: "shape" });
  });
});
