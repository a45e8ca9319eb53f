import { describe, expect, it } from "vitest";
import { KubeApiError, errorFromResponse, isPermanent, isTransient, refusalMessage } from "./errors.js";

const err = (code: number, message = "m", reason = `HTTP${code}`) =>
  new KubeApiError(code, reason, `POST /x: ${message}`, "POST", "/x", { message, reason, code });

describe("isPermanent", () => {
  it("treats 400, 413 and 422 as permanent for every verb", () => {
    for (const c of [400, 413, 422])
      for (const v of ["create", "update", "patch", "delete"] as const)
        expect(isPermanent(err(c), v), `${c} ${v}`).toBe(true);
  });

  it("treats 404 as permanent only on create (the namespace is gone); elsewhere the object is gone", () => {
    expect(isPermanent(err(404), "create")).toBe(true);
    expect(isPermanent(err(404), "patch")).toBe(false);
    expect(isPermanent(err(404), "delete")).toBe(false);
  });

  it("treats a 403 from admission as permanent, an RBAC denial or a quota as transient", () => {
    expect(isPermanent(err(403, 'admission webhook "x" denied the request: no'), "create")).toBe(true);
    expect(isPermanent(err(403, "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no"), "create")).toBe(
      true,
    );
    const rbac =
      'functioncalls.trellis.dev is forbidden: User "system:serviceaccount:t:op" cannot create resource "functioncalls"';
    expect(isPermanent(err(403, rbac), "create")).toBe(false);
    expect(isPermanent(err(403, 'pods "p" is forbidden: exceeded quota: q, requested: pods=1'), "create")).toBe(false);
  });

  it("never treats throttling, server errors, conflicts, relists or transport failures as permanent", () => {
    for (const c of [409, 410, 429, 500, 503, 504]) expect(isPermanent(err(c), "create"), String(c)).toBe(false);
    expect(isPermanent(new Error("ECONNRESET"), "create")).toBe(false);
    expect(isPermanent(Object.assign(new Error("socket"), { code: "ECONNREFUSED" }), "create")).toBe(false);
    expect(isTransient(new Error("ECONNRESET"))).toBe(true);
    expect(isTransient(err(429))).toBe(true);
    expect(isTransient(err(422))).toBe(false);
  });

  it("reads the status of a real answer body", () => {
    const body = JSON.stringify({
      kind: "Status",
      status: "Failure",
      reason: "Invalid",
      code: 422,
      message:
        'FunctionCall.trellis.dev "a" is invalid: metadata.labels: Invalid value: "x": must be no more than 63 characters',
    });
    const e = errorFromResponse(422, body, "POST", "/apis/trellis.dev/v1alpha1/namespaces/ns/functioncalls");
    expect(isPermanent(e, "create")).toBe(true);
    expect(refusalMessage(e, "create", "FunctionCall ns/a")).toBe(
      'the API server refused to create FunctionCall ns/a (422 Invalid): FunctionCall.trellis.dev "a" is invalid: metadata.labels: Invalid value: "x": must be no more than 63 characters',
    );
  });
});
