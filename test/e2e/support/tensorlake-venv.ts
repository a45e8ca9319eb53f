// A virtualenv with Tensorlake's own `tensorlake` package from PyPI, pinned, for the end-to-end test
// that drives Trellis with Tensorlake's client. It is made once under the user's cache directory and
// reused while intact; pip resolves the package through this machine's own configuration.
import { execFile } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const TENSORLAKE_VERSION = "0.5.163";
const MARKER = ".trellis-tensorlake-ready";

export interface TensorlakeVenv {
  /** The venv's python executable. */
  python: string;
  dir: string;
  /** False when an intact venv from an earlier run was reused. */
  created: boolean;
  /** Wall time spent here: checking, and creating when needed. */
  seconds: number;
}

export function tensorlakeVenvDir(version = TENSORLAKE_VERSION): string {
  const cache = process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? homedir(), ".cache");
  return join(cache, "trellis", `tensorlake-venv-${version}`);
}

// Imports what the test uses, and prints the installed version: a venv whose install was cut short
// or whose base python went away fails here and is made again.
const PROBE = [
  "import importlib.metadata as m",
  "import pydantic, tensorlake.applications",
  "from tensorlake.applications.remote.deploy import deploy_applications",
  "print(m.version('tensorlake'))",
].join("; ");

async function intact(dir: string, version: string): Promise<boolean> {
  const python = join(dir, "bin/python");
  if (!existsSync(python) || !existsSync(join(dir, MARKER))) return false;
  if (readFileSync(join(dir, MARKER), "utf8").trim() !== version) return false;
  try {
    const { stdout } = await run(python, ["-c", PROBE], { timeout: 60_000 });
    return stdout.trim() === version;
  } catch {
    return false;
  }
}

async function pipInstall(python: string, version: string): Promise<void> {
  try {
    await run(python, ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", `tensorlake==${version}`], {
      timeout: 600_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    const tail = `${err.stdout ?? ""}\n${err.stderr ?? ""}`.trim().split("\n").slice(-25).join("\n");
    throw new Error(`pip install tensorlake==${version} failed (pip uses this machine's index config):\n${tail}`, {
      cause: e,
    });
  }
}

/**
 * Returns a venv with tensorlake==version, creating it when missing or broken. It is built in a
 * directory of its own and renamed into place, so a run cut short never leaves a venv that looks
 * intact, and two runs racing each keep a whole one.
 */
export async function tensorlakeVenv(version = TENSORLAKE_VERSION): Promise<TensorlakeVenv> {
  const started = Date.now();
  const dir = tensorlakeVenvDir(version);
  const seconds = () => Math.round((Date.now() - started) / 100) / 10;
  if (await intact(dir, version)) return { python: join(dir, "bin/python"), dir, created: false, seconds: seconds() };

  const building = `${dir}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  try {
    await run("python3", ["-m", "venv", building], { timeout: 120_000 });
    await pipInstall(join(building, "bin/python"), version);
    writeFileSync(join(building, MARKER), `${version}\n`);
    rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(building, dir);
    } catch (e) {
      // Another run put its venv in place first: use that one.
      if (!(await intact(dir, version))) throw e;
    }
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
  if (!(await intact(dir, version))) {
    throw new Error(`the venv at ${dir} does not import tensorlake ${version} after it was made`);
  }
  return { python: join(dir, "bin/python"), dir, created: true, seconds: seconds() };
}
