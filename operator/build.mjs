// Bundles the operator into one ESM file that runs with a bare `node` (no node_modules in the
// image): the runtime image carries it at /opt/trellis/operator/operator.mjs, so one image serves
// both the operator Deployment and the function pods.
// Usage: node operator/build.mjs [--outfile PATH]
import { relative, resolve, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { build } from "esbuild";
import { buildUiAssets } from "./src/http-api/ui/build-assets.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "..");

function outfileFromArgs(argv) {
  const i = argv.indexOf("--outfile");
  if (i === -1) return join(repoRoot, "dist/operator/operator.mjs");
  const value = argv[i + 1];
  if (!value || value.startsWith("--")) throw new Error("--outfile: expected a file path after the flag");
  return resolve(value);
}

async function main() {
  const outfile = outfileFromArgs(process.argv.slice(2));
  const started = performance.now();
  // The web view's files ride inside the bundle: the image needs no extra files for them.
  const ui = await buildUiAssets();
  const result = await build({
    entryPoints: [join(here, "src/main.ts")],
    outfile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    sourcemap: "linked",
    // The source text stays in the heap for the life of the process: whitespace and syntax are
    // minified (12 MiB of source became ~4), names are kept so stack traces read without the map.
    // The map is not loaded by default: --enable-source-maps decodes it into ~60 MiB of arrays at
    // the first stack trace it maps (NODE_OPTIONS=--enable-source-maps turns it on to debug).
    minifyWhitespace: true,
    minifySyntax: true,
    sourcesContent: false,
    legalComments: "eof",
    metafile: true,
    logLevel: "warning",
    define: { __TRELLIS_UI_ASSETS__: JSON.stringify(ui) },
    // Bundled CommonJS deps (client-node, prom-client) call require() for built-ins.
    banner: {
      js: [
        'import { createRequire as __trellisCreateRequire } from "node:module";',
        "const require = __trellisCreateRequire(import.meta.url);",
      ].join("\n"),
    },
  });
  const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + (o.bytes ?? 0), 0);
  const ms = Math.round(performance.now() - started);
  process.stdout.write(
    `operator bundle: ${relative(repoRoot, outfile)} (${Object.keys(result.metafile.inputs).length} inputs, ${(bytes / 1024).toFixed(0)} KiB with map, ${ms} ms)\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`operator build failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
