import { describe, expect, it } from "vitest";
import { parseConfig } from "./config.js";

describe("parseConfig: the function pods' node-loss toleration", () => {
  it("defaults to 30 s and reads TRELLIS_NODE_LOSS_TOLERATION_SECONDS", () => {
    expect(parseConfig({}).nodeLossTolerationSeconds).toBe(30);
    expect(parseConfig({ TRELLIS_NODE_LOSS_TOLERATION_SECONDS: "5" }).nodeLossTolerationSeconds).toBe(5);
    expect(parseConfig({ TRELLIS_NODE_LOSS_TOLERATION_SECONDS: "0" }).nodeLossTolerationSeconds).toBe(0);
  });

  it.each(["-1", "86401", "2.5", "soon"])("refuses %j, naming the variable", (v) => {
    expect(() => parseConfig({ TRELLIS_NODE_LOSS_TOLERATION_SECONDS: v })).toThrow(
      /TRELLIS_NODE_LOSS_TOLERATION_SECONDS/,
    );
  });
});
