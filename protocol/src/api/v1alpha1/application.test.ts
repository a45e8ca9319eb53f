import { describe, expect, it } from "vitest";
import { NODE_LOSS_TOLERATION_MAX, applicationSpec } from "./application.js";

const spec = (extra: Record<string, unknown>) => ({ entrypoint: "main", module: "app", ...extra });

describe("spec.nodeLossTolerationSeconds", () => {
  it("takes whole seconds from 0 to a day, and may be left out", () => {
    expect(applicationSpec.parse(spec({})).nodeLossTolerationSeconds).toBeUndefined();
    expect(applicationSpec.parse(spec({ nodeLossTolerationSeconds: 0 })).nodeLossTolerationSeconds).toBe(0);
    expect(applicationSpec.parse(spec({ nodeLossTolerationSeconds: 86400 })).nodeLossTolerationSeconds).toBe(86400);
    expect(NODE_LOSS_TOLERATION_MAX).toBe(86400);
  });

  it.each([-1, 86401, 1.5, "30"])("refuses %j", (v) => {
    const r = applicationSpec.safeParse(spec({ nodeLossTolerationSeconds: v }));
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(["nodeLossTolerationSeconds"]);
  });
});
