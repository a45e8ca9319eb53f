"""The Image of each function of a user file, as JSON, for `kubectl trellis build`.

    python3 -m trellis.worker.images FILE.py

prints {"functions": [{"function": NAME, "image": SPEC or null}, ...]} where SPEC is
{"name", "tag", "base_image" (null: the Image names none of its own), "steps": [{"op", "args"}]}
with op one of RUN, ENV, COPY, ADD, WORKDIR, in the order the Image's builder calls gave them.
Standard library only: the CLI runs it with the machine's python3 and the SDK on PYTHONPATH.
"""

import inspect
import json
import os
import sys

from ..interface.exceptions import SDKUsageError
from ..interface.function import Function
from ..interface.image import Image

OPS = ("RUN", "ENV", "COPY", "ADD", "WORKDIR")


def _default_base() -> str:
    return inspect.signature(Image.__init__).parameters["base_image"].default


def image_spec(image: Image) -> dict:
    """The build recipe of one Image. base_image is None when the Image keeps the SDK's default
    (Tensorlake's public python image): the builder then picks a base that exists locally."""
    steps = []
    for op, args in image._steps:
        if op not in OPS:
            raise SDKUsageError(f"Image {image.name}:{image.tag}: unknown build step {op!r}")
        steps.append({"op": op, "args": [str(a) for a in args]})
    base = image.base_image
    return {
        "name": image.name,
        "tag": image.tag,
        "base_image": None if base == _default_base() else base,
        "steps": steps,
    }


def function_images(functions: dict[str, Function]) -> list[dict]:
    """One entry per function, in definition order; image None when the function names none."""
    out = []
    for name, fn in functions.items():
        image = fn._function_config.image
        out.append({"function": name, "image": None if image is None else image_spec(image)})
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 -m trellis.worker.images FILE.py", file=sys.stderr)
        return 2
    from .loader import load

    # What the user's module prints while it is imported goes to stderr: stdout carries the JSON.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        functions = load(argv[0])
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    print(json.dumps({"functions": function_images(functions)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
