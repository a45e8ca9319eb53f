"""Spilled values (PROTOCOL.md §4): values over the threshold travel as files in the run volume."""

import base64
import hashlib
import json
import os
import pickle

import pytest

from tensorlake.applications import File
from trellis._core import spill, values
from trellis.protocol.forms import value as check_value

from sidecar import Sidecar


@pytest.fixture
def spill_dir(tmp_path):
    d = tmp_path / "values"
    spill.configure(str(d), 64)
    yield d
    spill.configure(None, None)


def data(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 11, 12, 13, 35, 36, 37, 100, 1001])
def test_raw_file_round_trip_across_chunk_boundaries(spill_dir, monkeypatch, n):
    monkeypatch.setattr(spill, "CHUNK", 12)  # every size above crosses chunk edges differently
    content = data(n)
    form = spill.Spill(str(spill_dir), 1).raw(content, "image/png")
    path = form["spill"]["path"]
    check_value(form, "v")
    assert os.path.dirname(path) == str(spill_dir)
    text = open(path, "rb").read()
    assert form["spill"]["size"] == len(text)
    # The blob document exactly, data last.
    assert text == json.dumps({"raw": {"contentType": "image/png", "data": base64.b64encode(content).decode()}},
                              separators=(",", ":")).encode()
    got = values.decode(form, "v")
    assert isinstance(got, File) and got.content == content and got.content_type == "image/png"
    assert not os.path.exists(path)  # the receiver removes it


def test_large_file_encodes_as_spilled_raw_and_small_stays_inline(spill_dir):
    spill.configure(str(spill_dir), 600)
    small = values.encode(File(b"tiny", "text/plain"), "v")
    assert "pickle" in small  # as before
    big = values.encode(File(data(1000), "text/plain"), "v")
    assert set(big) == {"spill"}
    assert open(big["spill"]["path"], "rb").read().startswith(b'{"raw":{"contentType":"text/plain","data":"')
    assert values.decode(big, "v") == File(data(1000), "text/plain")


def test_json_and_pickle_forms_spill_above_the_threshold(spill_dir):
    assert values.encode([1, 2], "v") == {"json": [1, 2]}
    doc = {"k": "x" * 500, "n": [1, 2.5, None]}
    form = values.encode(doc, "v")
    assert json.load(open(form["spill"]["path"])) == {"value": doc}
    assert values.decode(form, "v") == doc
    obj = {("a", 1): b"\x00" * 300}
    form = values.encode(obj, "v")
    text = open(form["spill"]["path"]).read()
    assert pickle.loads(base64.b64decode(json.loads(text)["pickle"])) == obj
    assert values.decode(form, "v") == obj
    assert os.listdir(spill_dir) == []


def test_list_items_spill_one_by_one(spill_dir):
    form = values.encode([(1,), "y" * 200], "v")
    assert "pickle" in form["list"][0] and "spill" in form["list"][1]
    check_value(form, "v")
    assert values.decode(form, "v") == [(1,), "y" * 200]


def test_spilled_list_documents_are_read_back(spill_dir):
    form = spill.Spill(str(spill_dir), 1).document({"list": [{"json": 1}, {"pickle": base64.b64encode(
        pickle.dumps((2,))).decode()}]})
    assert json.load(open(form["spill"]["path"]))["list"][0] == {"value": 1}
    assert values.decode(form, "v") == [1, (2,)]


def test_app_boundary_reads_a_spilled_raw_input(spill_dir):
    from trellis._core import execute
    from tensorlake.applications import application, function

    @application()
    @function()
    def take(f: File) -> int:
        return len(f.content)

    form = spill.Spill(str(spill_dir), 1).raw(data(5000), "application/pdf")
    (arg,), _ = execute.decode_inputs(take, [form], {}, boundary=True)
    assert arg == File(data(5000), "application/pdf")


def test_without_spill_values_stay_inline():
    spill.configure(None, None)
    assert "pickle" in values.encode(File(data(100_000), "text/plain"), "v")


# -- the worker process --------------------------------------------------------------------------


def _worker(tmp_path, threshold):
    sc = Sidecar(module="apps.spill_app")
    hello = sc.expect("hello")
    assert hello["spill"] is True
    d = tmp_path / "values"
    sc.send({"type": "welcome", "protocol": 1, "spill": {"dir": str(d), "threshold": threshold}})
    return sc, d


def test_worker_spills_outputs_and_child_args_above_the_threshold(tmp_path):
    sc, d = _worker(tmp_path, 1024 * 1024)
    try:
        sc.send({"type": "assign", "call": "r1", "attempt": 1, "request": "r2", "function": "make_file",
                 "args": [{"json": 3 * 1024 * 1024 + 7}], "kwargs": {}})
        out = sc.expect("result", call="r1")["output"]
        path = out["spill"]["path"]
        assert os.path.dirname(path) == str(d) and os.path.getsize(path) == out["spill"]["size"]
        doc = json.load(open(path))
        assert base64.b64decode(doc["raw"]["data"]) == data(3 * 1024 * 1024 + 7)
        os.unlink(path)  # the sidecar's part
        sc.send({"type": "assign", "call": "r3", "attempt": 1, "request": "r3", "function": "small",
                 "args": [{"json": 1}], "kwargs": {}})
        assert sc.expect("result", call="r3")["output"] == {"json": 2}  # small values stay inline
        sc.send({"type": "assign", "call": "r4", "attempt": 1, "request": "r4", "function": "passes_file",
                 "args": [{"json": 2 * 1024 * 1024}], "kwargs": {}})
        spec = sc.expect("calls", call="r4")["calls"][0]
        arg = spec["args"][0]["spill"]["path"]
        assert json.load(open(arg))["raw"]["contentType"] == "application/x-test"
        os.unlink(arg)
    finally:
        assert sc.close() == 0


def test_worker_reads_spilled_inputs_and_resolved_outputs_and_removes_them(tmp_path):
    sc, d = _worker(tmp_path, 1024 * 1024)
    try:
        content = data(5 * 1024 * 1024 + 1)
        form = spill.Spill(str(d), 1).raw(content, "application/x-test")
        sc.send({"type": "assign", "call": "r5", "attempt": 1, "request": "r5", "function": "digest",
                 "args": [form], "kwargs": {}})
        want = f"application/x-test:{len(content)}:{hashlib.sha256(content).hexdigest()}"
        assert sc.expect("result", call="r5")["output"] == {"json": want}
        assert os.listdir(d) == []
        sc.send({"type": "assign", "call": "r6", "attempt": 1, "request": "r6", "function": "passes_file",
                 "args": [{"json": 10}], "kwargs": {}})
        spec = sc.expect("calls", call="r6")["calls"][0]
        sc.expect("watch", call="r6")
        out = spill.Spill(str(d), 1).document({"json": "resolved-" + "z" * 100})
        sc.send({"type": "resolved", "id": spec["id"], "output": out})
        assert sc.expect("result", call="r6")["output"] == {"json": "resolved-" + "z" * 100}
        assert os.listdir(d) == []
    finally:
        assert sc.close() == 0
