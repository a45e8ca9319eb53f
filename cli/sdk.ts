// The Python SDK as the plugin uses it: found next to the plugin in the repository (or at
// TRELLIS_SDK_PATH), and run once per command to import the user's file and describe it.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { CliError } from "./cluster.js";
import { type FunctionImage, parseFunctionImages } from "./image-build.js";

/** A file or directory of the repository this plugin was built from (bundle: dist/cli/, source: cli/). */
export function repoFile(rel: string): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = dirname(dir)) if (existsSync(join(dir, rel))) return join(dir, rel);
  return undefined;
}

export function sdkPath(): string {
  const p = process.env.TRELLIS_SDK_PATH ?? repoFile("runtime-image/python/trellis");
  if (!p)
    throw new CliError(
      "cannot find the Trellis Python SDK: set TRELLIS_SDK_PATH to the directory holding the trellis package",
    );
  return process.env.TRELLIS_SDK_PATH ? p : dirname(p);
}

export interface Described {
  name: string;
  application: boolean;
}

export interface FileDescription {
  functions: Described[];
  images: FunctionImage[];
}

// The description goes out on file descriptor 3: whatever the module prints at import time goes to
// stdout/stderr and cannot corrupt it.
const DESCRIBE = `
import json, os, sys
from trellis.worker.images import function_images
from trellis.worker.loader import load, describe
fns = load(sys.argv[1])
with os.fdopen(3, "w") as out:
    json.dump({"functions": [describe(f) for f in fns.values()], "images": function_images(fns)}, out)
`;

/** The functions the file defines and their Images, as the SDK describes them (one python3 import). */
export async function describeFile(file: string, path: string): Promise<FileDescription> {
  const env = { ...process.env, PYTHONPATH: [sdkPath(), process.env.PYTHONPATH].filter(Boolean).join(":") };
  const child = spawn("python3", ["-c", DESCRIBE, path], { env, stdio: ["ignore", "pipe", "pipe", "pipe"] });
  const collect = (s: Readable | null | undefined, limit: number) => {
    const parts: Buffer[] = [];
    let size = 0;
    s?.on("data", (b: Buffer) => {
      size += b.length;
      if (size <= limit) parts.push(b);
    });
    return () => Buffer.concat(parts).toString("utf8");
  };
  const described = collect(child.stdio[3] as Readable, 16 * 1024 * 1024);
  const stderr = collect(child.stderr, 1024 * 1024);
  const stdout = collect(child.stdout, 64 * 1024);
  const code = await new Promise<number | null>((done, fail) => {
    child.on("error", (e) => fail(new CliError(`running python3 to import ${file}: ${e.message}`)));
    child.on("close", done);
  });
  if (code !== 0) {
    const last = (stderr() || stdout()).trim().split("\n").slice(-3).join("\n");
    throw new CliError(`importing ${file} with the Trellis SDK failed:\n${last}`);
  }
  let data: { functions?: Described[]; images?: unknown };
  try {
    data = JSON.parse(described()) as typeof data;
  } catch (e) {
    throw new CliError(`importing ${file}: the SDK's description is not JSON (${(e as Error).message})`);
  }
  return { functions: data.functions ?? [], images: parseFunctionImages({ functions: data.images }) };
}
