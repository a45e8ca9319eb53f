// Writes crds/*.yaml from the zod schemas, and the same files into the Helm chart (which
// templates them, for its crds.install / crds.keep switches); with --check, fails on any drift.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderCrds } from "./render.js";

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const outDirs = ["crds", "charts/trellis/files/crds"];
const check = process.argv.includes("--check");
let drift = 0;
for (const dir of outDirs) {
  mkdirSync(join(repoRoot, dir), { recursive: true });
  for (const [name, text] of renderCrds()) {
    const path = join(repoRoot, dir, name);
    const current = existsSync(path) ? readFileSync(path, "utf8") : undefined;
    if (current === text) continue;
    if (check) {
      console.error(`${dir}/${name} differs from the generator's output: run npm run crds`);
      drift++;
    } else {
      writeFileSync(path, text);
      console.log(`wrote ${dir}/${name}`);
    }
  }
}
if (drift) process.exit(1);
