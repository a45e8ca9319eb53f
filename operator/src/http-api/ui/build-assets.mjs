// Builds the web view's files: the page and stylesheet as written, and the script bundled with
// esbuild (dagre included), all in memory. operator/build.mjs embeds the result into the operator
// bundle (the image has no esbuild and no source tree); from source, assets.ts calls it once.
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));

/** @returns {Promise<Record<string, string>>} file name → content */
export async function buildUiAssets() {
  const r = await build({
    entryPoints: [join(here, "client/main.js")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    write: false,
    legalComments: "none",
    logLevel: "warning",
  });
  const js = r.outputFiles?.[0]?.text;
  if (!js) throw new Error("web view: esbuild produced no script");
  return {
    "index.html": await readFile(join(here, "static/index.html"), "utf8"),
    "ui.css": await readFile(join(here, "static/ui.css"), "utf8"),
    "ui.js": js,
  };
}
