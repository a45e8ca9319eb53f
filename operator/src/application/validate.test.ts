import { describe, expect, it } from "vitest";
import { podTokenSecretName } from "../../../protocol/index.js";
import type { ApplicationObject } from "./types.js";
import { validateApplication } from "./validate.js";

const app = (spec: Partial<ApplicationObject["spec"]>, namespace = "ns1") => ({
  metadata: { name: "shop", namespace },
  spec: { entrypoint: "main", source: { inline: "x = 1\n" }, ...spec },
});
const errors = (v: ReturnType<typeof validateApplication>) => (v.ok ? [] : v.errors);

describe("validateApplication: secrets", () => {
  it("refuses a pod runtime token Secret in functions[].secrets and defaults.secrets", () => {
    const token = podTokenSecretName("other-main-x1y2z");
    expect(token).toBe("other-main-x1y2z.trellis-pod-token");
    const v = validateApplication(
      app({ functions: [{ name: "main", secrets: ["ok", token] }], defaults: { secrets: [token] } }),
    );
    expect(errors(v)).toEqual([
      `spec.functions[0].secrets[1]: "${token}" is a pod runtime token Secret (name ends with .trellis-pod-token); Applications may not name them`,
      `spec.defaults.secrets[0]: "${token}" is a pod runtime token Secret (name ends with .trellis-pod-token); Applications may not name them`,
    ]);
  });

  it("refuses the operator's key Secret in the operator's namespace only", () => {
    const reserved = ["trellis-system/trellis-key"];
    expect(
      errors(validateApplication(app({ defaults: { secrets: ["trellis-key"] } }, "trellis-system"), reserved)),
    ).toEqual([`spec.defaults.secrets[0]: "trellis-key" is the operator's key Secret; Applications may not name it`]);
    expect(validateApplication(app({ defaults: { secrets: ["trellis-key"] } }, "ns1"), reserved).ok).toBe(true);
  });

  it("accepts users' own Secrets, token-like names included", () => {
    const v = validateApplication(app({ functions: [{ name: "main", secrets: ["hf-token", "api.token", "common"] }] }));
    expect(v.ok).toBe(true);
  });
});
