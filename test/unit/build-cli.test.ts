// kubectl trellis build without a builder: the file is read through the SDK (python3), names are
// computed, and bad inputs fail before any builder runs.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildImages, detectBuilder } from "../../cli/build.js";

const dir = mkdtempSync(join(tmpdir(), "trellis-build-unit-"));
mkdirSync(join(dir, "data"));
writeFileSync(join(dir, "data/a.txt"), "one\n");
const file = join(dir, "app.py");
const source = (copy: string) => `
from tensorlake.applications import Image, application, function

print("import-time output does not disturb the description")
shared = Image(name="shared").run("pip install humanize==4.9.0")
own = Image(name="own", base_image="localhost/other:1").copy("${copy}", "/opt/data")


@function(image=shared)
def a(x: int) -> int:
    return x


@function(image=shared)
def b(x: int) -> int:
    return x


@function(image=own)
def c(x: int) -> int:
    return x


@application()
@function()
def main(x: int) -> int:
    return a(x)
`;

describe("buildImages (names only)", () => {
  it("maps each function with an Image to one name per distinct Image", async () => {
    writeFileSync(file, source("data"));
    const refs = await buildImages(undefined, file, { namesOnly: true });
    expect([...refs.keys()]).toEqual(["a", "b", "c"]);
    expect(refs.get("a")).toBe(refs.get("b"));
    expect(refs.get("a")).toMatch(/^localhost\/trellis-fn\/shared:[0-9a-f]{16}$/);
    expect(refs.get("c")).toMatch(/^localhost\/trellis-fn\/own:[0-9a-f]{16}$/);
    const withRegistry = await buildImages(undefined, file, { namesOnly: true, registry: "reg.example:5000/t" });
    expect(withRegistry.get("a")?.split(":").at(-1)).toBe(refs.get("a")?.split(":").at(-1));
    expect(withRegistry.get("a")).toMatch(/^reg\.example:5000\/t\/shared:/);
  });

  it("changes the name of the Image whose context file changed, and only that one", async () => {
    writeFileSync(file, source("data"));
    const before = await buildImages(undefined, file, { namesOnly: true });
    writeFileSync(join(dir, "data/a.txt"), "two\n");
    const after = await buildImages(undefined, file, { namesOnly: true });
    expect(after.get("a")).toBe(before.get("a"));
    expect(after.get("c")).not.toBe(before.get("c"));
  });

  it("names a missing COPY source, the flag of a bad --build-env, the file that does not import", async () => {
    writeFileSync(file, source("missing"));
    await expect(buildImages(undefined, file, { namesOnly: true })).rejects.toThrow(
      /Image own:latest: missing: no such file or directory/,
    );
    writeFileSync(file, source("data"));
    await expect(buildImages(undefined, file, { namesOnly: true, buildEnv: ["x y=1"] })).rejects.toThrow(
      /^--build-env "x y=1": expected KEY=VALUE/,
    );
    await expect(buildImages(undefined, join(dir, "nope.py"), {})).rejects.toThrow(/nope\.py: no such file/);
    writeFileSync(join(dir, "broken.py"), "import no_such_module_here\n");
    await expect(buildImages(undefined, join(dir, "broken.py"), {})).rejects.toThrow(
      /importing .*broken\.py with the Trellis SDK failed:[\s\S]*no_such_module_here/,
    );
  });

  it("refuses an unknown --builder", async () => {
    await expect(detectBuilder("kaniko")).rejects.toThrow(
      /^--builder "kaniko": expected one of buildah, podman, docker/,
    );
  });
});
