// Copies the Python SDK into the volume shared with the worker, so that any Python image can run
// `python -m trellis.worker`. A copy made by this sidecar version is reused (a restarted sidecar
// must not pull files from under a running worker); otherwise a fresh copy replaces it whole.
import { cp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

const MARKER = ".trellis-sdk-version";

export async function copySdk(source: string, target: string, version: string): Promise<"copied" | "present"> {
  const st = await stat(source).catch(() => undefined);
  if (!st?.isDirectory()) throw new Error(`the SDK source ${source} is not a directory`);
  const have = await readFile(join(target, MARKER), "utf8").catch(() => undefined);
  if (have === version && version !== "dev") return "present";
  const tmp = `${target}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await cp(source, tmp, {
    recursive: true,
    filter: (src) => !/(^|\/)(__pycache__|tests)(\/|$)/.test(src.slice(source.length)),
  });
  await writeFile(join(tmp, MARKER), version);
  await rm(target, { recursive: true, force: true });
  await rename(tmp, target);
  return "copied";
}
