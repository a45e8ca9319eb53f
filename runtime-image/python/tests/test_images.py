"""trellis.worker.images: what `kubectl trellis build` reads of each function's Image."""

import json
import os
import subprocess
import sys

SDK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

APP = """
import os
import sys

from tensorlake.applications import Image, application, function

print("printed at import time")
sys.stdout.flush()
os.write(1, b"written to fd 1 at import time\\n")

base = Image(name="tools", tag="v1").run("pip install humanize==4.9.0").env("MODE", 3)
custom = (
    Image(name="custom", base_image="localhost/other:1")
    .workdir("/opt/app")
    .copy("data/a.txt", "/opt/app/a.txt")
    .add("b.tar", "/opt/b")
    .run(["echo one", "echo two"])
)


@function(image=base)
def one(x: int) -> int:
    return x


@function(image=base)
def two(x: int) -> int:
    return x


@function(image=custom)
def three(x: int) -> int:
    return x


@application()
@function()
def main(x: int) -> int:
    return one(x)
"""


def run(tmp_path, source):
    path = tmp_path / "images_app.py"
    path.write_text(source)
    env = {**os.environ, "PYTHONPATH": SDK}
    return subprocess.run(
        [sys.executable, "-m", "trellis.worker.images", str(path)], env=env, capture_output=True, text=True
    )


def test_each_function_reports_its_image_steps_in_order(tmp_path):
    done = run(tmp_path, APP)
    assert done.returncode == 0, done.stderr
    assert "printed at import time" in done.stderr and "written to fd 1 at import time" in done.stderr
    fns = {f["function"]: f["image"] for f in json.loads(done.stdout)["functions"]}
    assert set(fns) == {"one", "two", "three", "main"}
    assert fns["main"] is None
    assert fns["one"] == fns["two"] == {
        "name": "tools",
        "tag": "v1",
        "base_image": None,  # the SDK's default: the builder picks the local one
        "steps": [
            {"op": "RUN", "args": ["pip install humanize==4.9.0"]},
            {"op": "ENV", "args": ["MODE", "3"]},
        ],
    }
    assert fns["three"] == {
        "name": "custom",
        "tag": "latest",
        "base_image": "localhost/other:1",
        "steps": [
            {"op": "WORKDIR", "args": ["/opt/app"]},
            {"op": "COPY", "args": ["data/a.txt", "/opt/app/a.txt"]},
            {"op": "ADD", "args": ["b.tar", "/opt/b"]},
            {"op": "RUN", "args": ["echo one", "echo two"]},
        ],
    }


def test_an_import_error_fails_with_the_traceback(tmp_path):
    done = run(tmp_path, "import no_such_module_here\n")
    assert done.returncode != 0
    assert "no_such_module_here" in done.stderr


def test_usage_without_a_file():
    done = subprocess.run(
        [sys.executable, "-m", "trellis.worker.images"],
        env={**os.environ, "PYTHONPATH": SDK},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "usage" in done.stderr
