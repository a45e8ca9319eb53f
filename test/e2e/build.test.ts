// kubectl trellis build on the local cluster: a function whose Image pip-installs a package the stock
// runtime image lacks is built with buildah (pip's index and CA bundle from this machine's own pip
// configuration), imported into the cluster's containerd, deployed with the image set on that
// function by kubectl trellis deploy, and invoked: its output shows the package imported there and absent from the stock image.
// A second build of the same file is a cache hit (same name, nothing built or imported). The name is
// a content hash, so the suite's second pass (chart mode) and later runs on this machine only check.
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildImages } from "../../cli/build.js";
import { createNamespace, deleteNamespace, kubeconfigPath, kubectl, repoRoot } from "../support/kube.js";
import { type OperatorProcess, startOperator } from "./support/operator.js";
import { invoke, waitFinished } from "./support/trellis.js";

const SOURCE = `
import importlib.util

from tensorlake.applications import Image, application, function

# humanize is not in the stock runtime image; 4.9.0 is pure Python.
HUMANIZE = Image(name="e2e-humanize", tag="v1").run("pip install humanize==4.9.0")


@function(image=HUMANIZE)
def pretty(x: int) -> dict:
    import humanize

    return {"text": humanize.intcomma(x), "version": humanize.__version__}


@application()
@function()
def report(x: int) -> dict:
    return {"stock_has_humanize": importlib.util.find_spec("humanize") is not None, **pretty(x)}
`;

let op: OperatorProcess;
let ns = "";
const dir = mkdtempSync(join(tmpdir(), "trellis-build-"));
const file = join(dir, "humanize_app.py");
writeFileSync(file, SOURCE);
let ref = "";

beforeAll(async () => {
  await promisify(execFile)("npm", ["run", "-s", "build:cli"], { cwd: repoRoot });
  op = await startOperator("build");
  ns = await createNamespace("build");
});
afterAll(async () => {
  await deleteNamespace(ns);
  await op?.stop();
});

describe("kubectl trellis build", () => {
  it("builds the Image with buildah and imports it into the local cluster", async () => {
    const lines: string[] = [];
    const t0 = Date.now();
    const refs = await buildImages(undefined, file, { builder: "buildah", log: (l) => lines.push(l) });
    console.log(`build: ${((Date.now() - t0) / 1000).toFixed(1)} s: ${lines.join("; ")}`);
    ref = refs.get("pretty") ?? "";
    expect(ref).toMatch(/^localhost\/trellis-fn\/e2e-humanize:[0-9a-f]{16}$/);
    expect([...refs.keys()]).toEqual(["pretty"]); // report names no Image: the stock image
    expect(lines).toHaveLength(1);
  }, 900_000);

  it("deploys with kubectl trellis deploy, which sets the built image, and runs the function in it", async () => {
    const { stdout, stderr } = await promisify(execFile)(
      join(repoRoot, "bin/kubectl-trellis"),
      ["deploy", file, "-n", ns, "--name", "humanize"],
      {
        env: { ...process.env, KUBECONFIG: kubeconfigPath() },
      },
    );
    expect(stderr).toContain(`image ${ref} for pretty: up to date\n`);
    expect(stdout).toContain("application.trellis.dev/humanize applied");
    const app = JSON.parse(await kubectl(["get", "application", "humanize", "-n", ns, "-o", "json"]));
    expect(app.spec.functions).toEqual([{ name: "pretty", image: ref }]);
    const request = await invoke(ns, "humanize", "report", [1234567]);
    const status = await waitFinished(ns, request, 240_000);
    expect(status.error).toBeUndefined();
    expect(status.phase).toBe("Succeeded");
    expect(status.output?.value).toEqual({ stock_has_humanize: false, text: "1,234,567", version: "4.9.0" });
  }, 300_000);

  it("builds nothing the second time: same name, a cache hit", async () => {
    const lines: string[] = [];
    const refs = await buildImages(undefined, file, { builder: "buildah", log: (l) => lines.push(l) });
    expect(refs.get("pretty")).toBe(ref);
    expect(lines).toEqual([`image ${ref} for pretty: up to date`]);
  }, 120_000);
});
