// Spilled values (PROTOCOL.md §4): a value over the threshold travels between worker and sidecar
// as a file in the run volume's values directory, holding its blob document. The sidecar moves
// such files to and from the object store as streams, so its memory does not grow with the value.
import { createReadStream, createWriteStream, lstatSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import { isAbsolute, join, relative } from "node:path";
import { pipeline } from "node:stream/promises";

export interface SpillRef {
  path: string;
  size: number;
}

export class SpillError extends Error {
  override name = "SpillError";
}

/** Prefixes of a blob document that may be uploaded as it is (never parsed by the sidecar). */
const DOCUMENT_PREFIXES = ['{"value":', '{"pickle":', '{"raw":', '{"list":'];

let files = 0;

/** The values directory: names the sidecar's files, checks the worker's, and removes both. */
export class SpillDir {
  constructor(
    readonly dir: string,
    readonly threshold: number,
  ) {}

  /** Creates the directory, emptied of files an earlier sidecar or worker left. */
  init(): this {
    mkdirSync(this.dir, { recursive: true });
    for (const name of readdirSync(this.dir)) rmSync(join(this.dir, name), { force: true, recursive: true });
    return this;
  }

  /** A new file for a value going to the worker (s-: written by the sidecar). */
  newPath(): string {
    return join(this.dir, `s${process.pid}-${++files}-${Date.now().toString(36)}.json`);
  }

  /** Whether a path names a file directly in the values directory. */
  contains(path: string): boolean {
    const rel = relative(this.dir, path);
    return isAbsolute(path) && rel !== "" && !rel.startsWith("..") && !rel.includes("/");
  }

  /**
   * A spill form the worker sent: a regular file directly in the values dir (not a link: the
   * sidecar must never upload a file of its own the worker points at), of the size it says.
   */
  check(ref: SpillRef, where: string): string {
    if (!this.contains(ref.path)) throw new SpillError(`${where}: spill path ${ref.path} is not a file of ${this.dir}`);
    let size: number;
    try {
      const st = lstatSync(ref.path);
      if (!st.isFile()) throw new Error("not a regular file");
      size = st.size;
    } catch (e) {
      throw new SpillError(`${where}: spill file ${ref.path}: ${(e as Error).message}`);
    }
    if (size !== ref.size)
      throw new SpillError(`${where}: spill file ${ref.path} holds ${size} bytes, not ${ref.size}`);
    return ref.path;
  }

  /** Removes a file of the values directory (never anything else a message names). */
  remove(path: string): void {
    if (this.contains(path)) rmSync(path, { force: true });
  }

  /** Removes every spill file a message of the worker names (one that will not be acted on). */
  removeNamed(msg: unknown): void {
    const stack: [unknown, number][] = [[msg, 0]];
    while (stack.length > 0) {
      const [v, depth] = stack.pop()!;
      if (typeof v !== "object" || v === null || depth > 64) continue;
      const spill = (v as { spill?: unknown }).spill;
      if (typeof spill === "object" && spill !== null && typeof (spill as SpillRef).path === "string")
        this.remove((spill as SpillRef).path);
      for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push([x, depth + 1]);
    }
  }

  /** Files a worker process left (named w<pid>-…), e.g. when its connection is lost. */
  removeWorkerFiles(pid: number): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const n of names) if (n.startsWith(`w${pid}-`)) rmSync(join(this.dir, n), { force: true });
  }
}

/** The first bytes of a file (the document's kind). */
export async function head(path: string, n = 16): Promise<string> {
  const f = await open(path, "r");
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await f.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead).toString("utf8");
  } finally {
    await f.close();
  }
}

/** Refuses a file that is not a blob document, from its first bytes (the rest is the worker's). */
export async function checkDocument(path: string, where: string): Promise<void> {
  const h = await head(path);
  if (!DOCUMENT_PREFIXES.some((p) => h.startsWith(p)))
    throw new SpillError(`${where}: spill file must hold one of {"value"}, {"pickle"}, {"raw"} or {"list"}`);
}

const agent = (url: URL) => (url.protocol === "https:" ? https : http);

/** Drains a response (so the connection is reused) and gives its status and a short body. */
async function finish(res: http.IncomingMessage): Promise<{ status: number; text: string }> {
  let text = "";
  for await (const chunk of res) if (text.length < 1024) text += String(chunk);
  return { status: res.statusCode ?? 0, text };
}

/** PUT of a file's exact bytes with its content-length (what a presigned URL for `size` needs). */
export function putFile(url: string, path: string, size: number): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = agent(u).request(
      u,
      { method: "PUT", headers: { "content-type": "application/octet-stream", "content-length": String(size) } },
      (res) => finish(res).then((r) => resolve(r.status), reject),
    );
    req.on("error", reject);
    pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), req).catch(reject);
  });
}

/** GET into a file; the status (and the file only for a 2xx). */
export function getFile(url: string, path: string): Promise<{ status: number; size: number }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = agent(u).get(u, (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        finish(res).then(() => resolve({ status, size: 0 }), reject);
        return;
      }
      pipeline(res, createWriteStream(path)).then(
        () => resolve({ status, size: statSync(path).size }),
        (e: Error) => {
          rmSync(path, { force: true });
          reject(e);
        },
      );
    });
    req.on("error", reject);
  });
}
