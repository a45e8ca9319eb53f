import { describe, expect, it } from "vitest";
import { Store, compareResourceVersions } from "./store.js";
import type { KubeObject } from "./types.js";

const obj = (ns: string, name: string, rv: string, labels: Record<string, string> = {}): KubeObject => ({
  metadata: { namespace: ns, name, resourceVersion: rv, labels },
});

const byApp = { app: (o: KubeObject) => (o.metadata.labels?.app ? [o.metadata.labels.app] : []) };

describe("compareResourceVersions", () => {
  it("compares integer versions numerically, not lexically", () => {
    expect(compareResourceVersions("9", "10")).toBe(-1);
    expect(compareResourceVersions("100", "99")).toBe(1);
    expect(compareResourceVersions("12345678901234567890", "12345678901234567890")).toBe(0);
  });
  it("gives no order for opaque or missing versions", () => {
    expect(compareResourceVersions("abc", "10")).toBeUndefined();
    expect(compareResourceVersions(undefined, "10")).toBeUndefined();
  });
});

describe("Store", () => {
  it("applies add, modify and delete and reports the old version", () => {
    const s = new Store(byApp);
    expect(s.apply("ADDED", obj("a", "x", "1", { app: "p" }))?.type).toBe("ADDED");
    const m = s.apply("MODIFIED", obj("a", "x", "2", { app: "q" }));
    expect(m?.type).toBe("MODIFIED");
    expect(m?.old?.metadata.resourceVersion).toBe("1");
    expect(s.byIndex("app", "p")).toEqual([]);
    expect(s.byIndex("app", "q").map((o) => o.metadata.name)).toEqual(["x"]);
    const d = s.apply("DELETED", obj("a", "x", "3"));
    expect(d?.type).toBe("DELETED");
    expect(s.get("a/x")).toBeUndefined();
    expect(s.byIndex("app", "q")).toEqual([]);
    expect(s.list("a")).toEqual([]);
  });

  it("ignores stale and duplicate events", () => {
    const s = new Store();
    s.apply("ADDED", obj("a", "x", "10"));
    expect(s.apply("MODIFIED", obj("a", "x", "9"))).toBeUndefined();
    expect(s.apply("MODIFIED", obj("a", "x", "10"))).toBeUndefined();
    expect(s.apply("DELETED", obj("a", "x", "9"))).toBeUndefined();
    expect(s.get("a/x")?.metadata.resourceVersion).toBe("10");
    // an ADDED for a known object is an update
    expect(s.apply("ADDED", obj("a", "x", "11"))?.type).toBe("MODIFIED");
    expect(s.apply("DELETED", obj("a", "nope", "12"))).toBeUndefined();
  });

  it("lists by namespace", () => {
    const s = new Store();
    s.apply("ADDED", obj("a", "x", "1"));
    s.apply("ADDED", obj("b", "y", "2"));
    s.apply("ADDED", obj("a", "z", "3"));
    expect(
      s
        .list("a")
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(["x", "z"]);
    expect(s.list().length).toBe(3);
    expect(s.list("c")).toEqual([]);
  });

  it("relist emits the differences and marks the cache synced", () => {
    const s = new Store(byApp);
    expect(s.synced()).toBe(false);
    s.replace([obj("a", "keep", "1"), obj("a", "change", "2", { app: "p" }), obj("a", "gone", "3")], "3");
    expect(s.synced()).toBe(true);
    const changes = s.replace(
      [obj("a", "keep", "1"), obj("a", "change", "5", { app: "q" }), obj("a", "new", "6")],
      "7",
    );
    const summary = changes.map((c) => `${c.type} ${c.obj.metadata.name}`).sort();
    expect(summary).toEqual(["ADDED new", "DELETED gone", "MODIFIED change"]);
    expect(s.byIndex("app", "q").length).toBe(1);
    expect(s.byIndex("app", "p").length).toBe(0);
    const gone = changes.find((c) => c.type === "DELETED")!;
    expect(gone.obj.metadata.resourceVersion).toBe("3"); // last known state
  });

  it("relist keeps an object newer than the list snapshot and ignores older listed versions", () => {
    const s = new Store();
    s.replace([obj("a", "x", "5")], "5");
    s.apply("ADDED", obj("a", "created-after", "12")); // seen by the watch after the list was taken
    s.apply("MODIFIED", obj("a", "x", "11"));
    const changes = s.replace([obj("a", "x", "8")], "10");
    expect(changes).toEqual([]);
    expect(s.get("a/created-after")).toBeDefined();
    expect(s.get("a/x")?.metadata.resourceVersion).toBe("11");
  });

  it("names the undeclared index", () => {
    expect(() => new Store(byApp).byIndex("owner", "x")).toThrow(/index "owner": not declared \(declared: app\)/);
  });
});
