import { describe, expect, it } from "vitest";
import type { KubeObject } from "../kube/index.js";
import { podIdentityFromCache } from "../dispatch/pod-identity.js";
import { authenticate, credentialKeyId, podToken, verifyPodToken } from "./credentials.js";

const KEY = "key";
const ok = (uid = "u1") => ({ application: "app", function: "f", uid });

describe("pod tokens", () => {
  it("versioned HMAC-SHA256 of namespace, pod and pod uid, verified in constant time", () => {
    const t = podToken(KEY, "ns", "p", "u1");
    expect(t).toMatch(/^t2\.[0-9a-f]{64}$/);
    expect(verifyPodToken(KEY, "ns", "p", "u1", t)).toBe(true);
    expect(verifyPodToken(KEY, "ns", "q", "u1", t)).toBe(false);
    expect(verifyPodToken(KEY, "ns2", "p", "u1", t)).toBe(false);
    expect(verifyPodToken(KEY, "ns", "p", "u2", t)).toBe(false);
    expect(verifyPodToken("other", "ns", "p", "u1", t)).toBe(false);
    expect(verifyPodToken(KEY, "ns", "p", "u1", t.slice(1))).toBe(false);
  });

  it("the key id changes with the key and carries the token format", () => {
    expect(credentialKeyId("k1")).toMatch(/^t2-[0-9a-f]{12}$/);
    expect(credentialKeyId("k1")).not.toBe(credentialKeyId("k2"));
  });
});

describe("authenticate", () => {
  const headers = (pod: string, token: string) => ({ "x-trellis-pod": `ns/${pod}`, authorization: `Bearer ${token}` });
  const auth = (ident: ReturnType<typeof ok> | string) => ({ operatorKey: KEY, podIdentity: () => ident });

  it("answers the pod's identity for its own token", () => {
    expect(authenticate(auth(ok()), headers("p", podToken(KEY, "ns", "p", "u1")))).toEqual({
      namespace: "ns",
      pod: "p",
      application: "app",
      function: "f",
    });
  });

  it("refuses the token of an earlier pod of the same name (recreated: another uid)", () => {
    expect(() => authenticate(auth(ok("u2")), headers("p", podToken(KEY, "ns", "p", "u1")))).toThrow(
      /not the token issued to pod ns\/p \(uid u2\)/,
    );
  });

  it("refuses a pod the cache refuses, whatever the token, with the reason", () => {
    const e = (() => {
      try {
        authenticate(auth("being deleted"), headers("p", podToken(KEY, "ns", "p", "u1")));
      } catch (err) {
        return err as { code: string; status: number; message: string };
      }
    })();
    expect(e).toMatchObject({
      code: "pod_unknown",
      status: 403,
      message: "pod ns/p: being deleted; it holds no valid token",
    });
  });

  it("refuses tokens of the unversioned format", () => {
    expect(() => authenticate(auth(ok()), headers("p", "0".repeat(64)))).toThrow(/not a pod token of format t2/);
  });

  it("refuses missing and malformed headers", () => {
    const a = auth(ok());
    expect(() => authenticate(a, {})).toThrow(/x-trellis-pod: required/);
    expect(() => authenticate(a, { "x-trellis-pod": "ns" })).toThrow(/must be "<namespace>\/<pod name>"/);
    expect(() => authenticate(a, { "x-trellis-pod": "ns/p" })).toThrow(/authorization: required/);
  });

  it("with the pod cache: each refusal, then the pod the token was issued to", () => {
    const pod = (meta: Partial<KubeObject["metadata"]>): KubeObject => ({
      metadata: {
        name: "p",
        namespace: "ns",
        uid: "u1",
        labels: {
          "app.kubernetes.io/managed-by": "trellis",
          "trellis.dev/application": "app",
          "trellis.dev/function": "f",
        },
        ownerReferences: [
          { apiVersion: "trellis.dev/v1alpha1", kind: "Application", name: "app", uid: "a1", controller: true },
        ],
        ...meta,
      },
    });
    const good = pod({});
    const cases: [string, KubeObject | undefined, RegExp][] = [
      ["unknown pod", undefined, /not a pod known to the operator/],
      [
        "no managed-by label",
        pod({ labels: { "trellis.dev/application": "app", "trellis.dev/function": "f" } }),
        /not created by the operator \(label app.kubernetes.io\/managed-by=trellis missing\)/,
      ],
      [
        "no function label",
        pod({ labels: { "app.kubernetes.io/managed-by": "trellis", "trellis.dev/application": "app" } }),
        /not a function pod/,
      ],
      ["no controller reference", pod({ ownerReferences: [] }), /no controller reference to Application app/],
      [
        "controller reference to another Application",
        pod({
          ownerReferences: [
            { apiVersion: "trellis.dev/v1alpha1", kind: "Application", name: "other", uid: "a2", controller: true },
          ],
        }),
        /no controller reference to Application app/,
      ],
      ["being deleted", pod({ deletionTimestamp: "2026-01-01T00:00:00Z" }), /being deleted/],
      ["recreated (another uid)", pod({ uid: "u2" }), /not the token issued to pod ns\/p \(uid u2\)/],
    ];
    const token = podToken(KEY, "ns", "p", "u1");
    for (const [name, p, msg] of cases) {
      const a = { operatorKey: KEY, podIdentity: podIdentityFromCache({ get: (k) => (k === "ns/p" ? p : undefined) }) };
      expect(() => authenticate(a, headers("p", token)), name).toThrow(msg);
    }
    const a = {
      operatorKey: KEY,
      podIdentity: podIdentityFromCache({ get: (k) => (k === "ns/p" ? good : undefined) }),
    };
    expect(authenticate(a, headers("p", token))).toMatchObject({ application: "app", function: "f" });
  });
});
