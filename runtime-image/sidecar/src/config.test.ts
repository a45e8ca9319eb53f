import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";

const base = {
  TRELLIS_OPERATOR_URL: "http://127.0.0.1:8081",
  TRELLIS_POD_NAMESPACE: "default",
  TRELLIS_POD_NAME: "app-fn-abcde",
  TRELLIS_POD_TOKEN: "tok",
  TRELLIS_FUNCTION: "pair_sum",
};

describe("sidecar config", () => {
  it("reads the pod builder's variables with defaults for the rest", () => {
    const c = loadConfig({ ...base, TRELLIS_CONCURRENCY: "4" });
    expect(c).toMatchObject({
      operatorUrl: "http://127.0.0.1:8081",
      podNamespace: "default",
      podName: "app-fn-abcde",
      token: "tok",
      function: "pair_sum",
      concurrency: 4,
      socket: "/run/trellis/worker.sock",
      sdkSource: "/opt/trellis/python",
      sdkDir: "/run/trellis/python",
      readyFile: "/run/trellis/sidecar.ready",
      drainDeadlineSeconds: 50,
    });
    expect(loadConfig(base).concurrency).toBeUndefined();
  });

  it("names every missing or bad variable", () => {
    expect(() => loadConfig({})).toThrow(
      /TRELLIS_OPERATOR_URL: is required; TRELLIS_POD_NAMESPACE: is required; TRELLIS_POD_NAME: is required; TRELLIS_FUNCTION: is required/,
    );
    expect(() => loadConfig({ ...base, TRELLIS_CONCURRENCY: "four" })).toThrow(
      /TRELLIS_CONCURRENCY: must be a whole number/,
    );
    expect(() => loadConfig({ ...base, TRELLIS_CONCURRENCY: "0" })).toThrow(/TRELLIS_CONCURRENCY: .*>=1/);
    expect(() => loadConfig({ ...base, TRELLIS_OPERATOR_URL: "ftp://x" })).toThrow(
      /TRELLIS_OPERATOR_URL: must be an http/,
    );
    expect(() => loadConfig({ ...base, TRELLIS_FUNCTION: "not-an-identifier" })).toThrow(
      /TRELLIS_FUNCTION: must be a Python identifier/,
    );
    expect(() => loadConfig({ ...base, TRELLIS_POD_TOKEN: "" })).toThrow(
      /TRELLIS_POD_TOKEN: is required \(or TRELLIS_POD_TOKEN_FILE\)/,
    );
  });

  it("reads the token from a file when asked to", () => {
    const dir = mkdtempSync(join(tmpdir(), "trellis-cfg-"));
    writeFileSync(join(dir, "token"), "from-file\n");
    expect(loadConfig({ ...base, TRELLIS_POD_TOKEN: "", TRELLIS_POD_TOKEN_FILE: join(dir, "token") }).token).toBe(
      "from-file",
    );
    expect(() => loadConfig({ ...base, TRELLIS_POD_TOKEN_FILE: join(dir, "absent") })).toThrow(
      /TRELLIS_POD_TOKEN_FILE: cannot read/,
    );
  });

  it("can skip the SDK copy", () => {
    expect(loadConfig({ ...base, TRELLIS_SDK_SOURCE: "" }).sdkSource).toBe("");
  });
});
