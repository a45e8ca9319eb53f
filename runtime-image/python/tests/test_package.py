"""The package surface: curated exports, the tensorlake import path, layering."""

import ast
import pathlib

import pytest

import tensorlake.applications as tl
import trellis
from tensorlake.applications.applications import run_application

ROOT = pathlib.Path(trellis.__file__).parent


def test_tensorlake_applications_exposes_the_same_objects():
    assert set(tl.__all__) == set(trellis.__all__)
    for name in trellis.__all__:
        assert getattr(tl, name) is getattr(trellis, name)


def test_curated_exports_include_the_seed_api():
    for name in ("application", "function", "cls", "Future", "RETURN_WHEN", "RequestContext", "Retries",
                 "RequestError", "RequestFailed", "FunctionError", "TimeoutError", "SDKUsageError",
                 "SerializationError", "DeserializationError", "TensorlakeError", "TrellisError", "File",
                 "run_local_application", "run_remote_application", "Request"):
        assert name in trellis.__all__


def test_interface_imports_no_runtime():
    for path in (ROOT / "interface").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert not module.startswith("..") or module.startswith("..interface"), (path.name, module)
                assert "local" not in module and "worker" not in module and "_core" not in module, (path.name, module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("trellis") for a in node.names), path.name


@tl.application()
@tl.function()
def flagged(flag: bool) -> str:
    return f"flag={flag}"


@tl.application()
@tl.function()
def plus(a: int, b: int = 1) -> int:
    return a + b


def test_run_application_forms():
    assert run_application(plus, 2, remote=False).output() == 3
    assert run_application(plus, 2, b=5).output() == 7
    # Tensorlake's own form: run_application(app, remote, *args)
    assert run_application(plus, False, 2).output() == 3
    # a bool input is an input when it cannot be the remote flag
    assert run_application(flagged, True).output() == "flag=True"
    assert run_application("plus", 4).output() == 5


def test_run_application_remote_needs_an_api_url(monkeypatch):
    monkeypatch.delenv("TRELLIS_API_URL", raising=False)
    with pytest.raises(tl.SDKUsageError, match="TRELLIS_API_URL"):
        run_application(plus, 1, remote=True)


def test_request_input_must_match_the_signature():
    with pytest.raises(tl.SDKUsageError, match="request input for application 'plus'"):
        tl.run_local_application(plus)


def test_headers_and_logger(capsys):
    import json

    headers = tl.Headers({"Content-Type": "text/plain"})
    assert headers["content-type"] == "text/plain" and headers == {"content-type": "text/plain"}
    tl.Logger.get_logger(app="demo").bind(step=2).info("hello", items=3)
    record = json.loads(capsys.readouterr().out)
    assert (record["event"], record["level"], record["app"], record["step"], record["items"]) == (
        "hello", "info", "demo", 2, 3)
