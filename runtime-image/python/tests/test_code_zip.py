"""Code shipped as a Tensorlake code zip: `--module code.zip` extracts it safely and imports the
modules its manifest names."""

import base64
import io
import json
import os
import stat
import subprocess
import sys
import uuid
import zipfile

import pytest

from sidecar import Sidecar
from trellis.interface.exceptions import SDKUsageError
from trellis.worker import codezip, loader

PYTHON_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_zip(path, files: dict, manifest: dict | None = None, symlinks: dict | None = None) -> str:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        if manifest is not None:
            z.writestr(codezip.MANIFEST, json.dumps(manifest))
        for name, text in files.items():
            z.writestr(name, text)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return str(path)


def _declare_size(path, size: int) -> None:
    """Rewrites every entry's uncompressed size in the local and central headers (a zip bomb's trick)."""
    data = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        while at >= 0:
            data[at + offset:at + offset + 4] = size.to_bytes(4, "little")
            at = data.find(sig, at + 4)
    path.write_bytes(bytes(data))


def tl_manifest(**functions) -> dict:
    return {"functions": {n: {"name": n, "module_import_name": m} for n, m in functions.items()}}


def unique() -> str:
    # Modules stay in sys.modules: every test imports fresh names.
    return f"m{uuid.uuid4().hex[:10]}"


APP = """
from tensorlake.applications import application, function
from {pkg}.helpers import twice

@function()
def double(x: int) -> int:
    return twice(x)

@application()
@function()
def entry(x: int) -> int:
    return double(x) + 1
"""


def test_tensorlake_zip_with_manifest_loads_the_functions_from_nested_modules(tmp_path):
    pkg = unique()
    path = make_zip(tmp_path / "code.zip", {
        f"{pkg}/app.py": APP.format(pkg=pkg),
        f"{pkg}/helpers.py": "def twice(x):\n    return 2 * x\n",
        "unrelated.py": "raise RuntimeError('not named by the manifest: must not be imported')\n",
    }, tl_manifest(double=f"{pkg}.app", entry=f"{pkg}.app"))
    functions = loader.load(path)
    assert sorted(functions) == ["double", "entry"]
    assert functions["double"]._original_function(4) == 8
    described = {f["name"]: f for f in map(loader.describe, functions.values())}
    assert described["entry"]["application"] is True and described["entry"]["parameters"] == ["x"]
    # Extracted into a private directory, first on sys.path.
    root = sys.path[0]
    assert os.path.isfile(os.path.join(root, pkg, "helpers.py")) and stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert root != str(tmp_path)


def test_zip_without_manifest_imports_every_top_level_py_file(tmp_path):
    a, b = unique(), unique()
    path = make_zip(tmp_path / "code.zip", {
        f"{a}.py": "from tensorlake.applications import function\n@function()\ndef fa(x):\n    return x\n",
        f"{b}.py": "from tensorlake.applications import function\n@function()\ndef fb(x):\n    return x\n",
        "README.md": "not code",
    })
    assert sorted(loader.load(path)) == ["fa", "fb"]


@pytest.mark.parametrize("name", ["../evil.py", "a/../../evil.py", "/etc/evil.py", "C:/evil.py", "a\\..\\evil.py"])
def test_paths_outside_the_archive_are_refused(tmp_path, name):
    path = make_zip(tmp_path / "code.zip", {name: "x = 1\n"})
    with pytest.raises(SDKUsageError, match=r"code zip .*(outside the archive|absolute or unsafe path)"):
        loader.load(path)
    assert not (tmp_path / "evil.py").exists() and not (tmp_path.parent / "evil.py").exists()


def test_symlinks_are_refused(tmp_path):
    path = make_zip(tmp_path / "code.zip", {"app.py": "x = 1\n"}, symlinks={"link.py": "/etc/passwd"})
    with pytest.raises(SDKUsageError, match="'link.py' is a symbolic link"):
        loader.load(path)


def test_size_and_entry_caps(tmp_path, monkeypatch):
    monkeypatch.setattr(codezip, "MAX_TOTAL_BYTES", 1000)
    path = make_zip(tmp_path / "big.zip", {"a.py": "#" * 600, "b.py": "#" * 600})
    with pytest.raises(SDKUsageError, match="holds more than 0 MB of files"):
        codezip.extract(path)
    # Headers that understate the size do not get past the cap: bytes are counted as written.
    lying = tmp_path / "lying.zip"
    make_zip(lying, {"a.py": "#" * 5000})
    _declare_size(lying, 10)
    with pytest.raises(SDKUsageError, match="holds more than|cannot extract 'a.py'"):
        codezip.extract(str(lying))
    monkeypatch.undo()
    monkeypatch.setattr(codezip, "MAX_ENTRIES", 2)
    path = make_zip(tmp_path / "many.zip", {"a.py": "", "b.py": "", "c.py": ""})
    with pytest.raises(SDKUsageError, match="has 3 entries; at most 2"):
        codezip.extract(path)


def test_bad_archives_and_manifests_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(SDKUsageError, match="not a readable ZIP archive"):
        loader.load(str(junk))
    with pytest.raises(SDKUsageError, match="does not exist"):
        loader.load(str(tmp_path / "missing.zip"))
    path = make_zip(tmp_path / "m.zip", {"a.py": ""}, {"functions": ["a"]})
    with pytest.raises(SDKUsageError, match="manifest .* is malformed"):
        loader.load(path)
    path = make_zip(tmp_path / "n.zip", {"a.py": ""}, tl_manifest(f="os; import evil"))
    with pytest.raises(SDKUsageError, match="is not a module name"):
        loader.load(path)
    with pytest.raises(SDKUsageError, match="neither a manifest nor any top-level .py"):
        loader.load(make_zip(tmp_path / "e.zip", {"pkg/a.py": ""}))


def test_the_cli_describe_snippet_reads_a_zip(tmp_path):
    # The same code cli/deploy.ts runs with python3.
    pkg = unique()
    path = make_zip(tmp_path / "code.zip", {f"{pkg}/app.py": APP.format(pkg=pkg), f"{pkg}/helpers.py": "twice = abs\n"},
                    tl_manifest(double=f"{pkg}.app", entry=f"{pkg}.app"))
    snippet = ("import json, sys\nfrom trellis.worker.loader import load, describe\n"
               "fns = load(sys.argv[1])\nprint(json.dumps([describe(f) for f in fns.values()]))\n")
    out = subprocess.run([sys.executable, "-c", snippet, path], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=PYTHON_ROOT))
    assert {f["name"]: f["application"] for f in json.loads(out.stdout)} == {"double": False, "entry": True}


def test_the_worker_runs_a_file_app_from_a_code_zip(tmp_path):
    path = make_zip(tmp_path / "code.zip", {"files/app.py": (
        "from tensorlake.applications import File, application, function\n"
        "@application()\n@function()\n"
        "def thumb(f: File) -> File:\n"
        "    return File(f.content[::-1], 'image/x-reversed')\n")},
        tl_manifest(thumb="files.app"))
    sc = Sidecar(module=path)
    try:
        hello = sc.expect("hello")
        assert [f["name"] for f in hello["functions"]] == ["thumb"]
        sc.send({"type": "welcome", "protocol": 1})
        data = base64.b64encode(b"\x89PNG").decode()
        sc.send({"type": "assign", "call": "rzip", "attempt": 1, "request": "rzip", "function": "thumb",
                 "args": [{"raw": {"contentType": "image/png", "data": data}}], "kwargs": {}})
        out = sc.expect("result", call="rzip")["output"]
        assert out == {"raw": {"contentType": "image/x-reversed", "data": base64.b64encode(b"GNP\x89").decode()}}
    finally:
        assert sc.close() == 0
