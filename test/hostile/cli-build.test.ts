// The hostile-input corpus of kubectl trellis build (test/hostile/cli-build.json), run against the
// pure part (cli/image-build.ts): --build-env, --registry and the SDK's description of the file's
// Images. A refusal is a CliError naming the flag or the Image and field and the rule (never another
// error type); an accepted Image renders a Dockerfile with one instruction per line.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CliError } from "../../cli/cluster.js";
import {
  DEFAULT_BASE_IMAGE,
  checkRegistry,
  parseBuildEnv,
  parseFunctionImages,
  renderDockerfile,
} from "../../cli/image-build.js";

interface Case {
  name: string;
  surface: "build-env" | "registry" | "images";
  input: unknown;
  expect: "refused" | "accepted";
  message?: string;
}

const CORPUS = fileURLToPath(new URL("./cli-build.json", import.meta.url));
const corpus = JSON.parse(readFileSync(CORPUS, "utf8")) as { description: string; cases: Case[] };

const INSTRUCTION = /^(#|FROM|ARG|RUN|ENV|COPY|ADD|WORKDIR|LABEL) /;

function feed(c: Case): string[] {
  switch (c.surface) {
    case "build-env":
      parseBuildEnv(c.input as string[]);
      return [];
    case "registry":
      checkRegistry(c.input as string);
      return [];
    case "images":
      return parseFunctionImages(c.input).flatMap((f) =>
        f.image ? [renderDockerfile(f.image, { defaultBase: DEFAULT_BASE_IMAGE, buildEnvKeys: [] })] : [],
      );
  }
}

describe("hostile inputs of kubectl trellis build", () => {
  it("every case is well formed", () => {
    expect(corpus.description).toBeTruthy();
    const names = new Set<string>();
    for (const c of corpus.cases) {
      expect(names.has(c.name), c.name).toBe(false);
      names.add(c.name);
      expect(["build-env", "registry", "images"]).toContain(c.surface);
      expect(["refused", "accepted"]).toContain(c.expect);
      if (c.expect === "refused") expect(() => new RegExp(c.message ?? "")).not.toThrow();
      if (c.expect === "refused") expect(c.message, c.name).toBeTruthy();
    }
  });

  it.each(corpus.cases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    if (c.expect === "accepted") {
      for (const dockerfile of feed(c)) {
        const lines = dockerfile.trimEnd().split("\n");
        for (const line of lines) expect(line).toMatch(INSTRUCTION);
        expect(lines.filter((l) => l.startsWith("FROM "))).toHaveLength(1);
      }
      return;
    }
    let error: unknown;
    try {
      feed(c);
    } catch (e) {
      error = e;
    }
    expect(error, "refused").toBeInstanceOf(CliError);
    expect((error as Error).message).toMatch(new RegExp(c.message!));
  });
});
