"""Tensorlake Applications compatibility (issue 8): decorator order, ignored extra arguments,
JSON by type hints at the application boundary, and the public names Tensorlake documents.

Every behaviour runs locally (run_local_application) and, where the worker takes its own path
(the root call of a request), through `python -m trellis.worker` too."""

import time
from typing import Any

import pytest

from apps import compat_app as app
from mini_cluster import FINAL, MiniCluster
from sidecar import Sidecar
from tensorlake.applications import (
    File,
    Headers,
    RequestFailed,
    SerializationError,
    run_local_application,
)
from trellis._core import values

try:
    import pydantic  # noqa: F401

    HAVE_PYDANTIC = True
except ImportError:
    HAVE_PYDANTIC = False

# CI installs pydantic (.ci/run): these tests must run, never skip.
needs_pydantic = pytest.mark.usefixtures("require_pydantic")


@pytest.fixture
def require_pydantic():
    assert HAVE_PYDANTIC, "pydantic is not installed (.ci/run installs it; pip install pydantic)"


@pytest.fixture(params=["pydantic", "stdlib"] if HAVE_PYDANTIC else ["stdlib"])
def converter(request, monkeypatch):
    """Runs a test with pydantic's TypeAdapter and with the standard-library fallback."""
    if request.param == "stdlib":
        monkeypatch.setattr(values, "_pydantic", lambda: None)
        monkeypatch.setattr(values, "_adapters", {})
    return request.param


# -- 1. @function() above @application() --------------------------------------------------
def test_function_above_application_is_accepted():
    fn = app.function_above_application
    assert fn._application_config is not None and fn._application_config.tags == {"k": "v"}
    assert fn._function_config.timeout == 9 and fn._function_config.description == "function above application"
    assert run_local_application(fn, 1).output() == 2


def test_function_twice_is_still_an_error():
    from tensorlake.applications import SDKUsageError, function

    with pytest.raises(SDKUsageError, match="applied twice"):
        function()(app.function_above_application)


# -- 2. extra arguments are ignored -----------------------------------------------------------
def test_extra_positional_and_keyword_arguments_are_ignored():
    assert run_local_application(app.no_args, "extra_arg").output() == "success"
    assert run_local_application(app.no_args, extra_kwarg="x").output() == "success"
    assert run_local_application(app.mixed, 1, "q", 2.5, 99, z=3).output() == "a=1,b='q',c=2.5"


def test_a_positional_also_given_by_keyword_is_ignored():
    # The keyword wins (Tensorlake); the positionals after it still land on their parameters.
    assert run_local_application(app.mixed, 1, "q", 2.5, b="kw").output() == "a=1,b='kw',c=2.5"


def test_run_application_helper_with_tensorlakes_argument_order():
    from tensorlake.applications.applications import run_application

    assert run_application(app.no_args, False, "extra_arg").output() == "success"
    assert run_application(app.mixed, False, 1, "x", c=2.0).output() == "a=1,b='x',c=2.0"


# -- 3. JSON by type hints at the application boundary ----------------------------------------
def test_input_not_matching_its_hint_fails_before_the_request_starts(converter):
    with pytest.raises(SerializationError) as info:
        run_local_application(app.list_of_ints, ["this", "is", "not", "a", "list", "of", "integers"])
    assert (
        "Failed to serialize '['this', 'is', 'not', 'a', 'list', 'of', 'integers']' as 'list[int]' to json"
        in str(info.value)
    )


def test_output_not_matching_its_hint_fails_the_request(converter, capsys):
    request = run_local_application(app.returns_not_none)
    with pytest.raises(RequestFailed) as info:
        request.output()
    assert str(info.value) == "function_error"
    assert "Failed to serialize '23456' as 'None' to json" in capsys.readouterr().err


def test_any_and_untyped_values_come_back_in_their_json_forms(converter):
    for fn in (app.any_echo, app.untyped_echo):
        assert run_local_application(fn, "s").output() == "s"
        assert run_local_application(fn, [1, 2, 3]).output() == [1, 2, 3]
        assert sorted(run_local_application(fn, {1, 2, 3}).output()) == [1, 2, 3]
        assert run_local_application(fn, (1, "a")).output() == [1, "a"]
        assert run_local_application(fn, {"k": (1,)}).output() == {"k": [1]}


def test_sets_tuples_and_int_keys_are_rebuilt_by_their_hints(converter):
    out = run_local_application(app.set_echo, {"a", "b"}).output()
    assert isinstance(out, set) and out == {"a", "b"}
    out = run_local_application(app.tuple_echo, ("a", 1)).output()
    assert isinstance(out, tuple) and out == ("a", 1)
    assert run_local_application(app.int_keys, {3: "x", 1: "y"}).output() == [1, 3]


def test_files_cross_the_boundary_as_they_are(converter):
    assert run_local_application(app.file_size, File(b"abcd", "text/plain")).output() == 4


@needs_pydantic
def test_pydantic_models_in_and_out():
    folder = {"path": "/p", "items": [{"name": "n", "size": 3}]}
    out = run_local_application(app.folder_in, folder=folder, item=app.Item(name="i", size=1)).output()
    assert out == "/p:[3]:i"
    for fn in (app.folder_out, app.folder_out_dict):
        out = run_local_application(fn).output()
        assert isinstance(out, app.Folder) and out.items[0] == app.Item(name="a", size=1)
    # Any: the model's JSON form, not the model object
    assert run_local_application(app.model_as_any).output() == {"name": "x", "size": 2}


@needs_pydantic
def test_pydantic_input_not_matching_its_model_fails_before_the_request_starts():
    with pytest.raises(SerializationError, match="Failed to serialize .* to json"):
        run_local_application(app.folder_in, folder={"path": "/p"}, item={"name": "i", "size": 1})


def test_the_core_works_without_pydantic(converter):
    # the standard-library fallback keeps JSON values and checks simple hints
    assert run_local_application(app.list_of_ints, [1, 2]).output() == "success"
    assert values.to_app_json({1, 2}, Any, "x")["json"] in ([1, 2], [2, 1])


# -- the same boundary through the worker ---------------------------------------------------
@pytest.fixture(scope="module")
def worker():
    sc = Sidecar(module="apps.compat_app", concurrency=8)
    sc.hello = sc.handshake()
    yield sc
    assert sc.close() == 0


def _run(sc, request: str, function: str, args: list, kwargs: dict | None = None) -> dict:
    cluster = MiniCluster(sc, request=request)
    cluster.add({"id": request, "kind": "call", "function": function,
                 "args": [{"json": a} for a in args],
                 "kwargs": {k: {"json": v} for k, v in (kwargs or {}).items()}})
    deadline = time.monotonic() + 30
    while True:
        cluster.step()
        root = cluster.calls[request]
        if root["phase"] in FINAL:
            return root
        cluster.handle(sc.recv(timeout=max(0.01, deadline - time.monotonic())))


def test_worker_describes_function_above_application(worker):
    fa = {f["name"]: f for f in worker.hello["functions"]}["function_above_application"]
    assert fa["application"] is True and fa["timeout"] == 9 and fa["tags"] == {"k": "v"}
    root = _run(worker, "rcompat1", "function_above_application", [1])
    assert root["phase"] == "Succeeded" and root["output"] == {"json": 2}


def test_worker_ignores_extra_arguments(worker):
    root = _run(worker, "rcompat2", "no_args", ["extra"], {"extra_kwarg": 1})
    assert root["phase"] == "Succeeded" and root["output"] == {"json": "success"}
    root = _run(worker, "rcompat3", "mixed", [1, "q", 2.5, 99], {"z": 3})
    assert root["phase"] == "Succeeded" and root["output"] == {"json": "a=1,b='q',c=2.5"}


def test_worker_converts_inputs_and_outputs_by_hints(worker):
    root = _run(worker, "rcompat4", "set_echo", [["a", "b"]])
    assert root["phase"] == "Succeeded" and sorted(root["output"]["json"]) == ["a", "b"]
    root = _run(worker, "rcompat5", "int_keys", [{"3": "x", "1": "y"}])
    assert root["phase"] == "Succeeded" and root["output"] == {"json": [1, 3]}
    root = _run(worker, "rcompat6", "returns_not_none", [])
    assert root["phase"] == "Failed" and root["error"]["type"] == "SerializationError"
    assert "Failed to serialize '23456' as 'None' to json" in root["error"]["message"]
    root = _run(worker, "rcompat7", "list_of_ints", [["a"]])
    assert root["phase"] == "Failed" and root["error"]["type"] == "DeserializationError"
    assert "as 'list[int]' with json serializer" in root["error"]["message"]


@needs_pydantic
def test_worker_pydantic_models_in_and_out(worker):
    root = _run(worker, "rcompat8", "folder_in", [],
                {"folder": {"path": "/p", "items": [{"name": "n", "size": 3}]}, "item": {"name": "i", "size": 1}})
    assert root["phase"] == "Succeeded" and root["output"] == {"json": "/p:[3]:i"}
    root = _run(worker, "rcompat9", "folder_out_dict", [])
    assert root["phase"] == "Succeeded"
    assert root["output"] == {"json": {"path": "/out", "items": [{"name": "a", "size": 1}]}}


# -- 4. public names ---------------------------------------------------------------------------
def test_public_names_and_interface_module_path():
    import tensorlake.applications as tl
    import tensorlake.applications.interface as tli
    import trellis

    for name in ("HttpBody", "ApplicationCapability", "Headers", "application", "function", "Image"):
        assert getattr(tl, name) is getattr(trellis, name) is getattr(tli, name)
    assert "HttpBody" in tl.__all__ and "ApplicationCapability" in tli.__all__
    assert typing_args(tl.ApplicationCapability) == ("unauthenticated_requests",)

    @tl.application(allow=["unauthenticated_requests"])
    @tl.function()
    def open_app(x: int) -> int:
        return x

    assert open_app._application_config.allow == ["unauthenticated_requests"]


def typing_args(t):
    import typing

    return typing.get_args(t)


def test_http_body():
    from tensorlake.applications import HttpBody

    body = HttpBody(content=b'{"a": 1}', content_type="application/json")
    assert body.content == b'{"a": 1}' and body.content_type == "application/json"
    assert body.text() == '{"a": 1}' and body.json() == {"a": 1}
    assert HttpBody(b"x").content_type is None
    assert str(body).startswith("HttpBody(content_type=application/json, content=")


def test_headers_getlist_and_multi_items():
    h = Headers([("X-Tag", "a"), ("x-tag", "b"), ("Accept", "*/*")])
    assert h["X-TAG"] == "b" and h.get("x-tag") == "b" and h.get("nope", 1) == 1
    assert h.getlist("x-Tag") == ["a", "b"] and h.getlist("nope") == []
    assert h.multi_items() == [("X-Tag", "a"), ("x-tag", "b"), ("Accept", "*/*")]
    assert list(h) == ["X-Tag", "Accept"] and len(h) == 2 and "ACCEPT" in h and 3 not in h


# -- related gaps found by Tensorlake's own tests ------------------------------------------------
def test_reduce_takes_any_iterable_like_tensorlake():
    assert run_local_application(app.reduce_a_string, "abc").output() == "abc"


def test_passing_a_function_object_has_tensorlakes_error_text():
    assert run_local_application(app.function_as_argument, 0).output() == (
        "Failed to serialize data with pickle serializer: Attempt to pickle Tensorlake Function 'concat'. "
        "It cannot be passed as a function parameter or returned from a Tensorlake Function."
    )


def test_worker_reduces_a_string(worker):
    root = _run(worker, "rcompat10", "reduce_a_string", ["abc"])
    assert root["phase"] == "Succeeded" and root["output"] == {"json": "abc"}
