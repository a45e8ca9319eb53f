// Bundles the sidecar into one ESM file that runs with a bare `node` (no node_modules in the image).
// Usage: node runtime-image/sidecar/build.mjs [--outfile PATH]
import { readFile, stat } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "../..");
const entry = join(here, "src/main.ts");

function outfileFromArgs(argv) {
  const i = argv.indexOf("--outfile");
  if (i === -1) return join(here, "dist/sidecar.mjs");
  const value = argv[i + 1];
  if (!value || value.startsWith("--")) {
    throw new Error("--outfile: expected a file path after the flag");
  }
  return resolve(value);
}

async function main() {
  const outfile = outfileFromArgs(process.argv.slice(2));
  await stat(entry).catch(() => {
    throw new Error(`sidecar entry ${relative(repoRoot, entry)} does not exist`);
  });
  const pkg = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8"));

  const started = performance.now();
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node", // node built-ins (fs, node:net, ...) stay external
    target: "node20",
    format: "esm",
    sourcemap: "linked", // readable stack traces with `node --enable-source-maps`
    legalComments: "eof",
    metafile: true,
    logLevel: "warning",
    define: { __TRELLIS_VERSION__: JSON.stringify(pkg.version) },
    // Some bundled deps are CommonJS and call require() for built-ins; ESM has no require, so
    // give the bundle one.
    banner: {
      js: [
        'import { createRequire as __trellisCreateRequire } from "node:module";',
        "const require = __trellisCreateRequire(import.meta.url);",
      ].join("\n"),
    },
  });

  const bytes = Object.values(result.metafile.outputs).reduce((sum, o) => sum + (o.bytes ?? 0), 0);
  const inputs = Object.keys(result.metafile.inputs).length;
  const ms = Math.round(performance.now() - started);
  process.stdout.write(
    `sidecar bundle: ${relative(repoRoot, outfile)} (${inputs} inputs, ${(bytes / 1024).toFixed(0)} KiB with map, ${ms} ms)\n`,
  );
}

main().catch((err) => {
  process.stderr.write(`sidecar build failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
