"""describe() of an application carries Tensorlake's EntryPointManifest bits; its pickles load in a
process that has Tensorlake's classes (stood in for here by copies of their definitions at the
same module paths) and neither `trellis` nor our `tensorlake` shim."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tensorlake.applications import File, HttpBody, application, function
from trellis.worker.loader import describe


class Local:  # a class that cannot be pickled by reference from the client's side
    pass


@application()
@function()
def typed(doc: File, n: int, tags: list[str] | None = None, body: HttpBody | None = None) -> list[File]:
    return [doc]


@application()
@function()
def untyped(a, b=2):
    return a


@function()
def helper(x: int) -> int:
    return x


def local_hint_app():
    class Inner:
        pass

    @application()
    @function()
    def uses_local(x: Inner) -> Inner:
        return x

    return uses_local


# Tensorlake's own definitions (tensorlake/applications/remote/manifests/application.py and
# interface/file.py, http.py), reduced to what unpickling needs.
FAKE_TENSORLAKE = {
    "tensorlake/__init__.py": "",
    "tensorlake/applications/__init__.py": "",
    "tensorlake/applications/interface/__init__.py": "",
    "tensorlake/applications/interface/file.py": "class File:\n    pass\n",
    "tensorlake/applications/interface/http.py": "class HttpBody:\n    pass\n",
    "tensorlake/applications/remote/__init__.py": "",
    "tensorlake/applications/remote/manifests/__init__.py": "",
    "tensorlake/applications/remote/manifests/application.py": textwrap.dedent("""
        from typing import Any
        from pydantic import BaseModel

        class EntryPointInputManifest(BaseModel):
            arg_name: str
            type_hint: Any

        class EntryPointManifest(BaseModel):
            function_name: str
            input_serializer: str
            inputs_base64: str
            output_serializer: str
            output_type_hints_base64: str
        """),
}

READER = textwrap.dedent("""
    import base64, json, pickle, sys
    from tensorlake.applications.remote.manifests.application import (
        EntryPointInputManifest, EntryPointManifest)
    out = {}
    for name, entry in json.load(sys.stdin).items():
        EntryPointManifest(function_name=name, **entry)  # the shape the client validates
        inputs = pickle.loads(base64.b64decode(entry["inputs_base64"]))
        assert all(type(i) is EntryPointInputManifest for i in inputs), inputs
        assert all(i.model_fields_set == {"arg_name", "type_hint"} for i in inputs)
        ret = pickle.loads(base64.b64decode(entry["output_type_hints_base64"]))
        out[name] = {"inputs": [[i.arg_name, repr(i.type_hint)] for i in inputs], "output": repr(ret)}
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def fake_tensorlake(tmp_path_factory):
    root = tmp_path_factory.mktemp("client")
    for path, text in FAKE_TENSORLAKE.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def read_in_client(root, entries: dict) -> dict:
    # Only the fake tensorlake and pydantic: no trellis, no shim, as in Tensorlake's client.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(root)
    out = subprocess.run([sys.executable, "-c", READER], input=json.dumps(entries), capture_output=True, text=True,
                         env=env, cwd=str(root))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_application_entries_carry_the_entrypoint_manifest_fields():
    entry = describe(typed)["tensorlake"]
    assert set(entry) == {"input_serializer", "inputs_base64", "output_serializer", "output_type_hints_base64"}
    assert entry["input_serializer"] == "json" and entry["output_serializer"] == "json"
    assert "tensorlake" not in describe(helper)


def test_the_pickles_load_into_tensorlakes_classes(fake_tensorlake):
    got = read_in_client(fake_tensorlake, {"typed": describe(typed)["tensorlake"],
                                           "untyped": describe(untyped)["tensorlake"]})
    file_cls = "<class 'tensorlake.applications.interface.file.File'>"
    assert got["typed"]["inputs"] == [
        ["doc", file_cls],
        ["n", "<class 'int'>"],
        ["tags", "list[str] | None"],
        ["body", "tensorlake.applications.interface.http.HttpBody | None"],
    ]
    assert got["typed"]["output"] == f"list[{file_cls.split(chr(39))[1]}]"
    assert got["untyped"] == {"inputs": [["a", "typing.Any"], ["b", "typing.Any"]], "output": "typing.Any"}


def test_a_hint_the_client_cannot_load_reads_as_any(fake_tensorlake):
    got = read_in_client(fake_tensorlake, {"uses_local": describe(local_hint_app())["tensorlake"]})
    assert got["uses_local"] == {"inputs": [["x", "typing.Any"]], "output": "typing.Any"}
