// Writes crds/*.yaml from the zod schemas; with --check, fails when crds/ differs.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderCrds } from "./render.js";

const outDir = join(dirname(fileURLToPath(import.meta.url)), "../../../crds");
const check = process.argv.includes("--check");
let drift = 0;
mkdirSync(outDir, { recursive: true });
for (const [name, text] of renderCrds()) {
  const path = join(outDir, name);
  const current = existsSync(path) ? readFileSync(path, "utf8") : undefined;
  if (current === text) continue;
  if (check) {
    console.error(`crds/${name} differs from the generator's output: run npm run crds`);
    drift++;
  } else {
    writeFileSync(path, text);
    console.log(`wrote crds/${name}`);
  }
}
if (drift) process.exit(1);
