"""Container image a function needs: a base image plus build steps (Tensorlake's Image API).

Trellis records the steps; `dockerfile()` renders them for an image build. The pod
runtime image must still contain the Trellis SDK and sidecar.
"""

import json

from .exceptions import SDKUsageError


def _text(where: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise SDKUsageError(f"Image.{where} must be a non-empty string, got {value!r}")
    return value


class Image:
    def __init__(self, name: str = "default", tag: str = "latest", base_image: str = "python:3.11-slim-bookworm"):
        self._name = _text("name", name)
        self._tag = _text("tag", tag)
        self._base_image = _text("base_image", base_image)
        self._steps: list[tuple[str, list[str]]] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def tag(self) -> str:
        return self._tag

    @property
    def base_image(self) -> str:
        return self._base_image

    def run(self, commands: str | list[str], options: dict | None = None) -> "Image":
        commands = [commands] if isinstance(commands, str) else list(commands)
        for c in commands:
            _text("run commands", c)
        self._steps.append(("RUN", commands))
        return self

    def env(self, key: str, value: str) -> "Image":
        self._steps.append(("ENV", [_text("env key", key), str(value)]))
        return self

    def copy(self, src: str, dest: str, options: dict | None = None) -> "Image":
        self._steps.append(("COPY", [_text("copy src", src), _text("copy dest", dest)]))
        return self

    def add(self, src: str, dest: str, options: dict | None = None) -> "Image":
        self._steps.append(("ADD", [_text("add src", src), _text("add dest", dest)]))
        return self

    def workdir(self, directory: str) -> "Image":
        self._steps.append(("WORKDIR", [_text("workdir directory", directory)]))
        return self

    def dockerfile(self) -> str:
        lines = [f"FROM {self._base_image}"]
        for op, args in self._steps:
            if op == "RUN":
                lines.extend(f"RUN {c}" for c in args)
            elif op == "ENV":
                lines.append(f"ENV {args[0]}={json.dumps(args[1])}")
            else:
                lines.append(f"{op} {' '.join(args)}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"Image({self._name}:{self._tag} from {self._base_image}, {len(self._steps)} steps)"
