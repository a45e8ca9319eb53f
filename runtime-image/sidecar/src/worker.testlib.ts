// The real Python worker and a test application, for the sidecar's tests.
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const PYTHON_ROOT = resolve(here, "../../python");

export const APP = `
import asyncio, os, time
from tensorlake.applications import File, RequestContext, application, function

@function()
def double(x: int) -> int:
    return x * 2

@function()
def add(a: int, b: int) -> int:
    return a + b

@application()
@function(max_concurrency=4)
def pair_sum(x: int) -> int:
    a = double.future(x).run()
    b = double.future(x + 1).run()
    return add(a.result(), b.result())

@function()
def boom(x: int) -> int:
    raise ValueError(f"bad {x}")

@function()
def relays(x: int) -> int:
    return boom(x)

@function()
def catches(x: int) -> str:
    try:
        boom(x)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return "no error"

@function()
def tail(x: int):
    return double.future(x)

@function()
def crash_once(x: int) -> str:
    marker = os.path.join(os.path.dirname(__file__), "crashed")
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(17)
    return f"survived {x}"

@function()
def sleepy(s: float) -> float:
    time.sleep(s)
    return s

@function(timeout=120)
async def forever(x: int) -> int:
    await asyncio.sleep(600)
    return x

@function()
def big(n: int) -> str:
    return "x" * n

@function()
def length(s: str) -> int:
    return len(s)

@function()
def big_pipeline(n: int) -> int:
    return length(big(n))

@application()
@function()
def reverse_file(f: File) -> File:
    return File(f.content[::-1], "application/x-reversed")

@function()
def stateful(x: int) -> int:
    ctx = RequestContext.get()
    ctx.state.set("seen", x)
    ctx.progress.update(1, 2, "half")
    ctx.metrics.counter("calls")
    return ctx.state.get("seen") + 1
`;

export interface Worker {
  proc: ChildProcess;
  exited: Promise<number | null>;
  stderr: string[];
}

export function startWorker(dir: string, socket: string, module = "app.py"): Worker {
  const proc = spawn(
    "python3",
    ["-m", "trellis.worker", "--socket", socket, "--module", module, "--concurrency", "4"],
    {
      cwd: dir,
      env: { ...process.env, PYTHONPATH: PYTHON_ROOT, PYTHONDONTWRITEBYTECODE: "1" },
      stdio: ["ignore", "inherit", "pipe"],
    },
  );
  const stderr: string[] = [];
  proc.stderr!.on("data", (c: Buffer) => stderr.push(c.toString()));
  const exited = new Promise<number | null>((r) => proc.on("exit", (code) => r(code)));
  return { proc, exited, stderr };
}
