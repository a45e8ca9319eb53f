"""Durable child ids: parent id + operation number; a retried parent re-attaches to its children."""

import re

from tensorlake.applications import Retries, application, function
from trellis._core.ids import child_id, new_request_id
from trellis.local import LocalRunner

RFC1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
runs: dict[str, int] = {}


def test_child_id_vectors_of_protocol_md():
    root = "r0123456789abcdef"
    assert child_id(root, root, 0) == "r0123456789abcdef-564r2ejegai5vlsd"
    assert child_id(root, root, 1) == "r0123456789abcdef-jipmbttnlnhowces"
    assert child_id(root, "r0123456789abcdef-564r2ejegai5vlsd", 0) == "r0123456789abcdef-3sxgvgmsse7hi4tf"


def test_request_ids_are_rfc1123_labels():
    for _ in range(20):
        rid = new_request_id()
        assert RFC1123.match(rid) and len(rid) <= 63


@application()
@function()
def chain(n: int) -> int:
    if n == 0:
        return 0
    return chain.future(n - 1)


def test_ids_stay_short_valid_and_unique_in_a_deep_chain():
    runner = LocalRunner(chain)
    assert runner.run([2000], {}).output() == 0
    ids = list(runner._calls)
    assert len(ids) == 2001 and len(set(ids)) == 2001
    assert all(RFC1123.match(i) and len(i) <= len(runner.request_id) + 17 for i in ids)


@function()
def expensive(x: int) -> int:
    runs["expensive"] = runs.get("expensive", 0) + 1
    return x * 10


@function()
def item(x: int) -> int:
    runs["item"] = runs.get("item", 0) + 1
    return x


@application(retries=Retries(max_retries=1, initial_delay=0.01))
@function()
def parent(x: int) -> int:
    runs["parent"] = runs.get("parent", 0) + 1
    a = expensive(x)
    b = sum(item.map([1, 2, 3]))
    if runs["parent"] == 1:
        raise RuntimeError("parent crashes after its children finished")
    return a + b


def test_retried_parent_reattaches_to_finished_children():
    runs.clear()
    runner = LocalRunner(parent)
    assert runner.run([4], {}).output() == 46
    assert runs == {"parent": 2, "expensive": 1, "item": 3}


def test_same_operations_give_the_same_ids_in_every_run_of_a_request_id():
    first = LocalRunner(parent, request_id="rfixed")
    runs.clear()
    first.run([1], {})
    second = LocalRunner(parent, request_id="rfixed")
    runs.clear()
    second.run([1], {})
    assert sorted(first._calls) == sorted(second._calls)
    assert child_id("rfixed", "rfixed", 0) in first._calls


@function()
def inc(x: int) -> int:
    return x + 1


@application()
@function()
def nested_futures(n: int) -> int:
    f = inc.future(0)
    for _ in range(n - 1):
        f = inc.future(f)
    return f


def test_a_future_nested_thousands_deep_gets_its_specs_without_recursion():
    # Each future's input is the previous one: their specs and ids are made in one go when the
    # outermost is returned, inputs first.
    runner = LocalRunner(nested_futures)
    assert runner.run([3000], {}).output() == 3000
    assert len(runner._calls) == 3001
