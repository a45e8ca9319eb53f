// The hostile-input corpus of the kubectl trellis plugin (test/hostile/cli-plugin.json): command
// lines refused by their own checks before any request leaves (the kubeconfig's server does not
// answer, so a case that reached it would fail with another message), and completion words that
// must always get an answer.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CliError } from "../../cli/cluster.js";
import { main } from "../../cli/commands.js";
import { complete } from "../../cli/completion.js";
import { unreachableKubeconfig } from "../support/kube.js";

interface Case {
  name: string;
  surface: "argv" | "completion";
  input: string[];
  expect: "refused" | "accepted";
  message?: string;
}

const CORPUS = fileURLToPath(new URL("./cli-plugin.json", import.meta.url));
const corpus = JSON.parse(readFileSync(CORPUS, "utf8")) as { description: string; cases: Case[] };
const saved = { KUBECONFIG: process.env.KUBECONFIG, TRELLIS_API_URL: process.env.TRELLIS_API_URL };

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), "trellis-cli-hostile-"));
  const cfg = unreachableKubeconfig(dir);
  process.env.KUBECONFIG = cfg;
  delete process.env.TRELLIS_API_URL;
});
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe("hostile inputs of the kubectl trellis plugin", () => {
  it("every case is well formed", () => {
    expect(corpus.description).toBeTruthy();
    const names = new Set<string>();
    for (const c of corpus.cases) {
      expect(names.has(c.name), c.name).toBe(false);
      names.add(c.name);
      expect(["argv", "completion"]).toContain(c.surface);
      expect(c.expect).toBe(c.surface === "argv" ? "refused" : "accepted");
      if (c.surface === "argv") expect(() => new RegExp(c.message ?? "")).not.toThrow();
    }
  });

  it.each(corpus.cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    if (c.surface === "completion") {
      const lookup = async () => ["calc", "calc-a1"];
      const r = await complete(c.input.length ? c.input : [""], lookup);
      expect([0, 4]).toContain(r.directive);
      for (const x of r.candidates) expect(x).not.toMatch(/[\n\r\0]/);
      return;
    }
    const error = await main(c.input).then(
      (code) => new Error(`accepted with exit code ${code}`),
      (e: unknown) => e,
    );
    expect(error, String(error)).toBeInstanceOf(CliError);
    expect((error as Error).message).toMatch(new RegExp(c.message!));
  });
});
