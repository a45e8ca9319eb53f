// Every label value and object name the protocol derives from user names, at and past its limit.
import { describe, expect, it } from "vitest";
import {
  LABEL_VALUE_MAX,
  REQUEST_STEM_MAX,
  applicationObjectName,
  childName,
  functionLabelValue,
  labelValue,
  newRequest,
  requestName,
} from "./index.js";

const VALID_LABEL = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const isLabelValue = (v: string) => v.length <= LABEL_VALUE_MAX && VALID_LABEL.test(v);
const name = (n: number, c = "a") => c.repeat(n);

describe("labelValue", () => {
  it("keeps a valid value of up to 63 characters as it is", () => {
    expect(labelValue(name(63))).toBe(name(63));
    expect(labelValue("my-app.v1")).toBe("my-app.v1");
    expect(labelValue("")).toBe("");
  });

  it("hashes the tail of longer values: valid, at most 63, distinct for distinct names, stable", () => {
    for (const n of [64, 70, 100, 253]) {
      const v = labelValue(name(n));
      expect(isLabelValue(v), `${n}: ${v}`).toBe(true);
      expect(v.length).toBe(63);
      expect(v.startsWith(name(52))).toBe(true);
    }
    expect(labelValue(name(64))).not.toBe(labelValue(name(65)));
    expect(labelValue(`${name(60)}-x-1`)).not.toBe(labelValue(`${name(60)}-x-2`));
    expect(labelValue(name(100))).toBe(labelValue(name(100)));
  });

  it("trims a cut that ends in a dash or dot and fixes characters a label value refuses", () => {
    const v = labelValue(`${name(51)}-.${name(20)}`);
    expect(isLabelValue(v)).toBe(true);
    expect(v).toMatch(/^a{51}-[0-9a-f]{10}$/);
    expect(isLabelValue(labelValue("-x-"))).toBe(true);
    expect(isLabelValue(labelValue("a b/c"))).toBe(true);
    expect(isLabelValue(labelValue("---"))).toBe(true);
  });

  it("function names up to the CRD's 127 characters, with edges a label refuses", () => {
    for (const fn of [name(63), name(64), name(127), "_private", "__dunder__", `${name(126)}_`, "Class.method"])
      expect(isLabelValue(functionLabelValue(fn)), fn).toBe(true);
    expect(functionLabelValue(name(64))).not.toBe(functionLabelValue(name(65)));
  });
});

describe("request and call names", () => {
  it("a request id is at most 53 characters for application names up to 253", () => {
    for (const app of [name(1), name(33), name(40), name(63), `${name(39)}-${name(23)}`, name(253), `${name(39)}.x`]) {
      for (const key of [undefined, "k", name(300)]) {
        const r = requestName("ns", app, key);
        expect(r.length, app).toBeLessThanOrEqual(REQUEST_STEM_MAX + 13);
        expect(DNS_SUBDOMAIN.test(r), r).toBe(true);
        expect(isLabelValue(r)).toBe(true);
      }
    }
  });

  it("a child name is 17 characters longer than its request at any depth; its labels all fit", () => {
    const r = requestName("ns", `${name(30)}-${name(32, "b")}`, "key");
    const c1 = childName(r, r, 0);
    const c2 = childName(r, c1, 7);
    const c3 = childName(r, c2, 123456);
    for (const c of [c1, c2, c3]) expect(c.length).toBe(r.length + 17);
    expect(c3.length).toBe(70);
    expect(isLabelValue(labelValue(c3))).toBe(true);
  });

  it("the root call of a request of a 63-character application carries valid labels and the full key", () => {
    const app = name(63);
    const key = name(300, "k");
    const root = newRequest({ namespace: "ns", application: app, function: "__entry__", idempotencyKey: key });
    for (const v of Object.values(root.metadata.labels ?? {})) expect(isLabelValue(v), v).toBe(true);
    expect(root.metadata.labels!["trellis.dev/application"]).toBe(app);
    expect(root.metadata.annotations!["trellis.dev/idempotency-key"]).toBe(key.slice(0, 256));
    // A request named by hand past 63 characters gets a hashed request label.
    const long = newRequest({ namespace: "ns", application: app, function: "f", name: name(200) });
    expect(long.metadata.labels!["trellis.dev/request"]).toBe(labelValue(name(200)));
    expect(isLabelValue(long.metadata.labels!["trellis.dev/request"]!)).toBe(true);
  });

  it("an application object name from a Tensorlake name is a DNS label of at most 63", () => {
    for (const n of ["my_app", "My_App", `A${name(126)}`, "Class.method", `_${name(80)}_`])
      expect(applicationObjectName(n)).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
  });
});
