"""The worker's own log lines go to stderr (container logs); the protocol never carries logs."""

import sys


def log(message: str) -> None:
    print(f"trellis-worker: {message}", file=sys.stderr, flush=True)
