"""deploy_applications (tensorlake.applications.remote.deploy): the code zip, Tensorlake's manifest
shape and the multipart upload, against a stand-in of the deploy route on 127.0.0.1. Validation by
Tensorlake's own pydantic ApplicationManifest needs its wheel, which the suite cannot depend on: here
the fields it requires and their JSON types are checked with the standard library."""

import base64
import email.parser
import email.policy
import io
import json
import os
import pickle
import subprocess
import sys
import threading
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tensorlake.applications import RemoteAPIError, SDKUsageError, TensorlakeError
from tensorlake.applications.remote.deploy import deploy_applications
from trellis.interface import _registry
from trellis.worker import codezip

SDK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

APP = '''
from tensorlake.applications import Retries, application, function
from helpers.util import double


@function(gpu="A100:2", retries=Retries(max_retries=3, initial_delay=2.0), secrets=["KEY"], memory=1.5)
def square(x: int) -> int:
    """Squares x."""
    return double(x * x) // 2


@application(tags={"team": "a"}, region="eu-1")
@function(timeout=12.5, max_containers=4)
def work(n: int, scale: int = 1) -> dict:
    """Work entry."""
    return {"n": n, "square": square(n) * scale}


@application()
@function()
def other(s: str) -> str:
    return s.upper()
'''
UTIL = '''
from tensorlake.applications import function


@function()
def double(x: int) -> int:
    return 2 * x
'''

# Tensorlake 0.5.163's required fields (no default in its pydantic models) and their JSON types.
APP_FIELDS = {"name": str, "description": str, "tags": dict, "version": str, "functions": dict, "entrypoint": dict}
FN_FIELDS = {
    "name": str,
    "description": str,
    "initialization_timeout_sec": int,
    "timeout_sec": int,
    "resources": dict,
    "retry_policy": dict,
    "cache_key": (str, type(None)),
    "parameters": list,
    "return_type": (dict, type(None)),
    "placement_constraints": dict,
    "max_concurrency": int,
}
ENTRY_FIELDS = ("function_name", "input_serializer", "inputs_base64", "output_serializer", "output_type_hints_base64")


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A code directory with the app (a unique module name per test) and things never shipped."""
    monkeypatch.setattr(_registry, "_all", [])
    monkeypatch.setattr(_registry, "_functions", {})
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    pkg = f"helpers_{uuid.uuid4().hex[:8]}"
    name = f"app_{uuid.uuid4().hex[:8]}"
    (tmp_path / pkg).mkdir()
    (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / pkg / "util.py").write_text(UTIL)
    (tmp_path / f"{name}.py").write_text(APP.replace("helpers.util", f"{pkg}.util"))
    (tmp_path / "README.md").write_text("not python")
    for skipped in (".git/hooks", "__pycache__", "env", "build"):
        (tmp_path / skipped).mkdir(parents=True)
        (tmp_path / skipped / "x.py").write_text("raise SystemExit('must not be shipped')\n")
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "secret_local.py").write_text("raise SystemExit('ignored')\n")
    (tmp_path / ".gitignore").write_text("# comment\nbuild/\n*_local.py\n!keep.py\n")
    return tmp_path, name, pkg


class DeployApi(BaseHTTPRequestHandler):
    posts: list = []
    refuse: tuple | None = None

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, payload = type(self).refuse or (200, {})
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def api(monkeypatch):
    DeployApi.posts, DeployApi.refuse = [], None
    server = ThreadingHTTPServer(("127.0.0.1", 0), DeployApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for var in ("TRELLIS_API_URL", "TRELLIS_NAMESPACE", "TRELLIS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TENSORLAKE_API_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("INDEXIFY_NAMESPACE", "team-a")
    monkeypatch.setenv("TENSORLAKE_API_KEY", "k3y")
    yield DeployApi
    server.shutdown()
    server.server_close()


def parts(post: dict) -> dict:
    """The multipart body's parts by name: (filename, content type, bytes)."""
    head = f"Content-Type: {post['headers']['Content-Type']}\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + post["body"])
    assert msg.is_multipart()
    return {
        p.get_param("name", header="content-disposition"): (p.get_filename(), p.get_content_type(), p.get_payload(decode=True))
        for p in msg.iter_parts()
    }


def test_uploads_each_application_with_code_and_manifest(project, api):
    root, name, pkg = project
    deploy_applications(str(root / f"{name}.py"), load_source_dir_modules=True)
    assert [p["path"] for p in api.posts] == ["/v1/namespaces/team-a/applications"] * 2
    assert all(p["headers"]["Authorization"] == "Bearer k3y" for p in api.posts)
    got = [parts(p) for p in api.posts]
    for form in got:
        assert set(form) == {"code", "code_content_type", "application", "upgrade_requests_to_latest_code"}
        assert form["code"][:2] == ("code.zip", "application/zip")
        assert form["code_content_type"][2] == b"application/zip"
        assert form["upgrade_requests_to_latest_code"][2] == b"false"
    assert got[0]["code"][2] == got[1]["code"][2]  # one zip for every application of the file
    manifests = {m["name"]: m for m in (json.loads(f["application"][2]) for f in got)}
    assert sorted(manifests) == ["other", "work"]

    work = manifests["work"]
    for field, kind in APP_FIELDS.items():
        assert isinstance(work[field], kind), field
    assert work["runtime"] == "python" and work["tags"] == {"team": "a"}
    assert work["description"] == "Work entry."
    assert sorted(work["functions"]) == ["double", "other", "square", "work"]
    for fn_name, fn in work["functions"].items():
        assert fn["name"] == fn_name
        for field, kind in FN_FIELDS.items():
            assert isinstance(fn[field], kind), (fn_name, field)
        assert "image" not in fn  # no function_images: the operator's stock image
        assert set(fn["resources"]) == {"cpus", "memory_mb", "ephemeral_disk_mb", "gpus"}
        assert set(fn["retry_policy"]) == {"max_retries", "initial_delay_sec", "max_delay_sec", "delay_multiplier"}
        assert fn["placement_constraints"] == {"filter_expressions": ["region==eu-1"]}
    w, sq = work["functions"]["work"], work["functions"]["square"]
    assert (w["is_api"], w["timeout_sec"], w["initialization_timeout_sec"], w["max_containers"]) == (True, 13, 13, 4)
    assert [p["name"] for p in w["parameters"]] == ["n", "scale"]
    assert w["parameters"][1] == {
        "name": "scale",
        "data_type": {"title": "scale", "x-parameter-kind": "POSITIONAL_OR_KEYWORD", "type": "integer", "default": 1},
        "description": None,
        "required": False,
    }
    assert sq["is_api"] is False and sq["parameters"] == [] and sq["docstring"] == "Squares x."
    assert sq["resources"]["gpus"] == [{"model": "A100", "count": 2}] and sq["resources"]["memory_mb"] == 1536
    assert sq["secret_names"] == ["KEY"]
    assert sq["retry_policy"] == {"max_retries": 3, "initial_delay_sec": 2.0, "max_delay_sec": 60.0, "delay_multiplier": 2.0}
    entry = work["entrypoint"]
    assert set(entry) == set(ENTRY_FIELDS) and entry["function_name"] == "work"
    assert entry["input_serializer"] == entry["output_serializer"] == "json"
    pickle_ops = base64.b64decode(entry["inputs_base64"])
    assert b"EntryPointInputManifest" in pickle_ops and b"scale" in pickle_ops
    assert manifests["other"]["functions"]["work"]["placement_constraints"] == {"filter_expressions": []}


def test_zip_holds_the_manifest_and_sources_and_loads_in_the_runtime(project, api, tmp_path_factory):
    root, name, pkg = project
    deploy_applications(str(root / f"{name}.py"), load_source_dir_modules=True)
    code = parts(api.posts[0])["code"][2]
    with zipfile.ZipFile(io.BytesIO(code)) as z:
        names = z.namelist()
        manifest = json.loads(z.read(".tensorlake_code_manifest.json"))
    assert names == [".tensorlake_code_manifest.json", f"{name}.py", f"{pkg}/__init__.py", f"{pkg}/util.py"]
    assert manifest == {
        "functions": {
            "double": {"name": "double", "module_import_name": f"{pkg}.util"},
            "other": {"name": "other", "module_import_name": name},
            "square": {"name": "square", "module_import_name": name},
            "work": {"name": "work", "module_import_name": name},
        }
    }
    # The runtime's loader takes the zip as the operator mounts it (in a fresh interpreter).
    path = tmp_path_factory.mktemp("mounted") / "code.zip"
    path.write_bytes(code)
    script = (
        "import sys; from trellis.worker import loader; from tensorlake.applications import run_local_application; "
        "fns = loader.load(sys.argv[1]); print(sorted(fns)); print(run_local_application(fns['work'], 3, scale=2).output())"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        env={**os.environ, "PYTHONPATH": SDK},
        cwd=str(path.parent),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["['double', 'other', 'square', 'work']", "{'n': 3, 'square': 18}"]
    # What the loader read: the modules of the zip's manifest, in first-seen order.
    root = codezip.extract(str(path))
    assert codezip.modules(root) == [f"{pkg}.util", name]  # manifest keys are sorted: double first


def test_same_sources_same_version_and_images_from_function_images(project, api):
    root, name, _ = project
    path = str(root / f"{name}.py")
    deploy_applications(path, load_source_dir_modules=True)
    images = {("work", f): f"reg.example/{f}:1" for f in ("work", "square", "double", "other")}
    images.update({("other", f): "reg.example/other:1" for f in ("work", "square", "double", "other")})
    deploy_applications(path, function_images=images)  # already imported: no load
    first, second = ([json.loads(parts(p)["application"][2]) for p in api.posts[i : i + 2]] for i in (0, 2))
    assert first[0]["version"] != first[1]["version"]  # one per application
    assert second[0]["functions"]["square"]["image"] == "reg.example/square:1"
    (root / f"{name}.py").write_text((root / f"{name}.py").read_text() + "\n# changed\n")
    api.posts.clear()
    deploy_applications(path)
    again = [json.loads(parts(p)["application"][2]) for p in api.posts]
    assert again[0]["version"] != first[0]["version"]  # the code changed
    del images[("work", "double")]
    with pytest.raises(TensorlakeError, match="no image for function 'double' of application 'work'"):
        deploy_applications(path, function_images=images)


def test_refusals_and_usage_errors(project, api, monkeypatch):
    root, name, _ = project
    path = str(root / f"{name}.py")
    with pytest.raises(ValueError, match="upgrading running requests is not supported"):
        deploy_applications(path, upgrade_running_requests=True)
    api.refuse = (409, {"code": "conflict", "message": "work maps to the Application work, which holds x"})
    with pytest.raises(RemoteAPIError) as e:
        deploy_applications(path, load_source_dir_modules=True)
    assert e.value.status_code == 409
    assert "conflict: work maps to the Application work, which holds x" in str(e.value)
    monkeypatch.delenv("TENSORLAKE_API_URL")
    with pytest.raises(SDKUsageError, match="TENSORLAKE_API_URL"):
        deploy_applications(path)


def test_size_cap(project, api):
    root, name, _ = project
    (root / "big.py").write_text("#" * (5 * 1024 * 1024 + 1) + "\n")
    with pytest.raises(SDKUsageError, match=r"exceeds 5 MiB of \.py files \(largest: big\.py"):
        deploy_applications(str(root / f"{name}.py"), load_source_dir_modules=True)
    assert api.posts == []


def test_function_outside_the_code_directory_is_refused(project, api, tmp_path_factory):
    root, name, _ = project
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    mod = f"stray_{uuid.uuid4().hex[:8]}"
    (elsewhere / f"{mod}.py").write_text(UTIL.replace("double", "stray"))
    sys.path.insert(0, str(elsewhere))
    __import__(mod)
    with pytest.raises(SDKUsageError, match="outside the code directory"):
        deploy_applications(str(root / f"{name}.py"), load_source_dir_modules=True)
