"""{"raw"} values at the application boundary: a request input that is not JSON (a File body) and
a File or HttpBody output, converted as Tensorlake's deserialize_value does (File/HttpBody
parameters take the bytes, any other parameter reads them as JSON)."""

import base64
from typing import Any

import pydantic
import pytest

from tensorlake.applications import (
    DeserializationError,
    File,
    HttpBody,
    RequestFailed,
    application,
    function,
    run_local_application,
)
from trellis._core import execute, values
from trellis.protocol import MessageError
from trellis.protocol.forms import value as check_value


def raw(content: bytes, content_type: str) -> dict:
    return {"raw": {"contentType": content_type, "data": base64.b64encode(content).decode()}}


class Point(pydantic.BaseModel):
    x: int
    y: int


@function()
def shout(f: File) -> File:
    return File(f.content.upper(), f.content_type)


@application()
@function()
def upper_file(f: File) -> File:
    return shout(f)  # a File between functions keeps its pickled form


@application()
@function()
def body_info(body: HttpBody) -> str:
    return f"{body.content_type}|{body.text()}"


@application()
@function()
def point_sum(p: Point, scale: int = 1) -> int:
    assert isinstance(p, Point)
    return (p.x + p.y) * scale


@application()
@function()
def untyped(v):
    return v


@application()
@function()
def echo_body(body: HttpBody) -> HttpBody:
    return HttpBody(body.content[::-1])


@application()
@function()
def make_file(n: int) -> Any:
    return File(b"z" * n, "application/x-zeds")


def test_raw_input_to_a_file_parameter_becomes_a_file():
    args, _ = values.decode_app_inputs(upper_file, [raw(b"\x00\xffpng", "image/png")], {})
    assert isinstance(args[0], File)
    assert (args[0].content, args[0].content_type) == (b"\x00\xffpng", "image/png")


def test_raw_input_to_an_http_body_parameter_keeps_bytes_and_type():
    _, kwargs = values.decode_app_inputs(body_info, [], {"body": raw(b"a,b\n1,2", "text/csv")})
    body = kwargs["body"]
    assert type(body) is HttpBody and body.content == b"a,b\n1,2" and body.content_type == "text/csv"


def test_raw_input_to_other_hints_is_read_as_utf8_json_by_the_hint():
    args, kwargs = values.decode_app_inputs(
        point_sum, [raw(b'{"x": 2, "y": "3"}', "text/plain")], {"scale": raw(b"10", "application/octet-stream")})
    assert args == [Point(x=2, y=3)] and kwargs == {"scale": 10}
    (v,), _ = values.decode_app_inputs(untyped, [raw('["é", 1]'.encode(), "text/plain")], {})
    assert v == ["é", 1]


@pytest.mark.parametrize("content", [b"not json", b'{"x": 1}', b"\xff\xfe"])
def test_raw_input_that_does_not_fit_its_hint_names_the_parameter(content):
    with pytest.raises(DeserializationError, match=r"^argument 'p' of point_sum\(\): Failed to deserialize data"):
        values.decode_app_inputs(point_sum, [raw(content, "text/plain")], {})


def test_malformed_raw_forms_are_deserialization_errors():
    with pytest.raises(DeserializationError, match="argument 'f' of upper_file.*not base64"):
        values.decode_app_inputs(upper_file, [{"raw": {"contentType": "a/b", "data": "%%%"}}], {})
    with pytest.raises(DeserializationError, match="malformed raw value"):
        values.decode_app_inputs(upper_file, [{"raw": {"data": ""}}], {})


def test_a_bad_raw_input_fails_the_request_with_the_parameter_named():
    outcome = execute.run_sync(_ctx(point_sum), point_sum, [raw(b"{", "text/plain")], {}, boundary=True)
    assert outcome[0] == "error"
    assert outcome[1]["type"] == "DeserializationError"
    assert outcome[1]["message"].startswith("argument 'p' of point_sum(): ")


def test_json_input_to_a_file_parameter_gets_the_json_bytes_as_tensorlake_does():
    args, _ = values.decode_app_inputs(body_info, [{"json": {"a": [1, 2]}}], {})
    assert args[0].json() == {"a": [1, 2]} and args[0].content_type == "application/json"


def test_file_and_http_body_outputs_leave_as_raw_forms():
    assert values.encode_app_output(upper_file, File(b"\x01\x02", "image/gif")) == raw(b"\x01\x02", "image/gif")
    # No content type: bytes are octet-stream, as an HTTP server would serve them.
    assert values.encode_app_output(echo_body, HttpBody(b"abc")) == raw(b"abc", "application/octet-stream")
    # A type the API's schema would refuse travels as octet-stream rather than failing the call.
    assert values.encode_app_output(upper_file, File(b"q", "text"))["raw"]["contentType"] == "application/octet-stream"
    assert values.encode_app_output(upper_file, File(b"q", "text/csv; charset=utf-8"))["raw"]["contentType"] == (
        "text/csv; charset=utf-8")
    # The hint does not matter: a File value is bytes with a type.
    assert values.encode_app_output(make_file, File(b"q", "text/x-q")) == raw(b"q", "text/x-q")
    # Between functions a File keeps its pickled form.
    assert "pickle" in values.encode(File(b"q", "text/x-q"), "v")


def test_local_mode_runs_the_same_rules_end_to_end():
    out = run_local_application(upper_file, File(b"hello", "text/plain")).output()
    assert type(out) is File and (out.content, out.content_type) == (b"HELLO", "text/plain")
    assert run_local_application(body_info, File(b"x=1", "application/x-www-form-urlencoded")).output() == (
        "application/x-www-form-urlencoded|x=1")
    # A File given to a parameter annotated otherwise is read as JSON, as over HTTP.
    assert run_local_application(point_sum, File(b'{"x": 4, "y": 5}', "text/plain"), 2).output() == 18
    assert values.encode_app_inputs(upper_file, [File(b"abc", "text/plain")], {})[0][0].form == raw(
        b"abc", "text/plain")
    echoed = run_local_application(echo_body, File(b"abc", "text/plain")).output()
    assert type(echoed) is HttpBody and echoed.content == b"cba"
    out = run_local_application(make_file, 3).output()
    assert type(out) is File and out.content == b"zzz" and out.content_type == "application/x-zeds"


def test_local_mode_fails_a_request_whose_file_input_is_not_json_for_its_hint(capsys):
    request = run_local_application(point_sum, File(b"\x89PNG", "image/png"))
    with pytest.raises(RequestFailed):
        request.output()
    assert "argument 'p' of point_sum()" in capsys.readouterr().err


def test_raw_is_a_value_form_of_the_protocol():
    check_value(raw(b"abc", "text/plain"), "output")
    check_value({"list": [raw(b"", "a/b")]}, "output")
    for bad, field in [({"raw": {"contentType": "", "data": ""}}, "output.raw.contentType"),
                       ({"raw": {"contentType": "a/b", "data": "abc"}}, "output.raw.data"),
                       ({"raw": {"contentType": "a/b"}}, "output.raw.data"),
                       ({"raw": "YWJj"}, "output.raw")]:
        with pytest.raises(MessageError) as caught:
            check_value(bad, "output")
        assert caught.value.path == field


def _ctx(fn):
    from trellis._core import context

    class _NoBackend:
        def __getattr__(self, name):
            raise AssertionError(f"the boundary must fail before any {name}")

    return context.CallContext(backend=_NoBackend(), request_id="r1", call_id="r1", attempt=1, function=fn,
                               headers={})
