"""python -m trellis.worker --socket PATH --module MODULE_OR_FILE [--function NAME] [--concurrency N]

Connects to the sidecar's Unix socket, imports the user's code once, announces its
functions and runs the calls the sidecar assigns. Exit codes: 0 after shutdown,
2 connection lost, 3 user code failed to load, 4 protocol error.
"""

import argparse
import os
import socket
import sys
import time
import traceback

import trellis  # noqa: F401 - installs the runtime hooks

from . import loader
from .protocol import PROTOCOL_VERSION, encode_frame
from .server import Worker, log


def _connect(path: str, wait_seconds: float) -> socket.socket:
    deadline = time.monotonic() + wait_seconds
    delay = 0.01
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)  # the sidecar may still be creating its socket
            delay = min(delay * 2, 0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trellis.worker")
    parser.add_argument("--socket", default=os.environ.get("TRELLIS_SOCKET"))
    parser.add_argument("--module", default=os.environ.get("TRELLIS_MODULE"))
    parser.add_argument("--function", default=os.environ.get("TRELLIS_FUNCTION"))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("TRELLIS_CONCURRENCY", "0")))
    parser.add_argument("--connect-timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    if not args.socket or not args.module:
        parser.error("--socket and --module (or TRELLIS_SOCKET and TRELLIS_MODULE) are required")
    if args.concurrency < 0:
        parser.error("--concurrency must be >= 1")

    sock = _connect(args.socket, args.connect_timeout)
    try:
        functions = loader.load(args.module)
        if args.function and args.function not in functions:
            raise LookupError(f"--function {args.function!r} is not defined in {args.module}")
    except BaseException as e:  # noqa: BLE001 - report any load failure to the sidecar
        error = {"type": type(e).__name__, "module": type(e).__module__, "message": str(e),
                 "traceback": "".join(traceback.format_exception(e))}
        log(f"cannot load {args.module}: {error['traceback']}")
        sock.sendall(encode_frame({"type": "fatal", "protocol": PROTOCOL_VERSION, "error": error}))
        sock.close()
        return 3
    concurrency = args.concurrency
    if concurrency == 0:
        concurrency = functions[args.function]._function_config.max_concurrency if args.function else 1
    worker = Worker(sock, functions, concurrency, args.module)
    worker.drain_on_signal(float(os.environ.get("TRELLIS_DRAIN_SECONDS", "25")))
    return worker.serve()


if __name__ == "__main__":
    sys.exit(main())
