import { describe, expect, it } from "vitest";
import type { KubeObject } from "../kube/index.js";
import { functionPodIdentity, podIdentityFromCache } from "./pod-identity.js";

const owner = (name = "app") => ({
  apiVersion: "trellis.dev/v1alpha1",
  kind: "Application",
  name,
  uid: "a1",
  controller: true,
});
const managed = { "app.kubernetes.io/managed-by": "trellis" };

describe("pod identity", () => {
  it("application from the label, function from the annotation (exact Python name), uid", () => {
    const pods = new Map<string, KubeObject>([
      [
        "ns/p1",
        {
          metadata: {
            name: "p1",
            uid: "u1",
            labels: { ...managed, "trellis.dev/application": "app", "trellis.dev/function": "priv.abc" },
            annotations: { "trellis.dev/function-name": "_priv" },
            ownerReferences: [owner()],
          },
        },
      ],
      [
        "ns/p2",
        {
          metadata: {
            name: "p2",
            uid: "u2",
            labels: { ...managed, "trellis.dev/application": "app", "trellis.dev/function": "f" },
            ownerReferences: [owner()],
          },
        },
      ],
      ["ns/p3", { metadata: { name: "p3", uid: "u3", labels: managed, ownerReferences: [owner()] } }],
    ]);
    const id = podIdentityFromCache({ get: (k: string) => pods.get(k) });
    expect(id("ns", "p1")).toEqual({ application: "app", function: "_priv", uid: "u1" });
    expect(id("ns", "p2")).toEqual({ application: "app", function: "f", uid: "u2" });
    expect(id("ns", "p3")).toMatch(/not a function pod/);
    expect(id("ns", "nope")).toBe("not a pod known to the operator");
  });

  it("refuses pods the operator did not create, pods being deleted and pods without uid", () => {
    const base = {
      name: "p",
      uid: "u",
      labels: { ...managed, "trellis.dev/application": "app", "trellis.dev/function": "f" },
      ownerReferences: [owner()],
    };
    const id = (m: Partial<KubeObject["metadata"]>) => functionPodIdentity({ metadata: { ...base, ...m } });
    expect(id({})).toEqual({ application: "app", function: "f", uid: "u" });
    expect(id({ labels: { "trellis.dev/application": "app", "trellis.dev/function": "f" } })).toMatch(
      /label app.kubernetes.io\/managed-by=trellis missing/,
    );
    expect(id({ ownerReferences: undefined })).toMatch(/no controller reference to Application app/);
    expect(id({ ownerReferences: [{ ...owner(), controller: false }] })).toMatch(/no controller reference/);
    expect(id({ ownerReferences: [owner("other")] })).toMatch(/no controller reference to Application app/);
    expect(id({ ownerReferences: [{ ...owner(), kind: "ReplicaSet" }] })).toMatch(/no controller reference/);
    expect(id({ deletionTimestamp: "2026-01-01T00:00:00Z" })).toBe("being deleted");
    expect(id({ uid: undefined })).toBe("has no uid");
  });
});
