// PLACEHOLDER entry for the Trellis sidecar, so the image build has something to bundle.
// The sidecar engineer replaces this file with the real supervisor/operator client.
declare const __TRELLIS_VERSION__: string | undefined;

const version = typeof __TRELLIS_VERSION__ === "string" ? __TRELLIS_VERSION__ : "dev";

if (process.argv.includes("--version")) {
  process.stdout.write(`trellis-sidecar ${version}\n`);
} else {
  process.stderr.write("trellis-sidecar: not implemented yet (placeholder entry point)\n");
  process.exitCode = 2;
}
