"""Every call crosses a serialization boundary; wrapped futures are refused with the rule."""

import asyncio
import dataclasses
import threading

import pydantic
import pytest

from tensorlake.applications import (
    File,
    FunctionError,
    Retries,
    SerializationError,
    application,
    function,
    run_local_application,
)
from trellis._core import values


@function()
def double(x: int) -> int:
    return x * 2


@function()
async def adouble(x: int) -> int:
    return x * 2


@function()
def ident(x):
    return x


@function()
def mutate(items: list) -> list:
    items.append("child")
    return items


@dataclasses.dataclass
class Box:
    value: object


def app(fn):
    return application()(function()(fn))


@app
def wrapped_in_list(x: int) -> str:
    try:
        ident([double.future(x)])
    except SerializationError as e:
        return str(e)
    return "no error"


@app
def wrapped_in_dict(x: int) -> str:
    try:
        ident({"f": double.future(x)})
    except SerializationError as e:
        return str(e)
    return "no error"


@app
def wrapped_in_dataclass(x: int) -> str:
    try:
        ident(Box(double.future(x)))
    except SerializationError as e:
        return str(e)
    return "no error"


@app
async def coroutine_in_list(x: int) -> str:
    coro = adouble(x)
    try:
        await ident.future([coro])
    except SerializationError as e:
        return str(e)
    finally:
        coro.close()
    return "no error"


@app
async def task_in_tuple(x: int) -> str:
    task = asyncio.create_task(adouble(x))
    try:
        ident((task,))
    except SerializationError as e:
        message = str(e)
    await task
    return message


@function()
def returns_wrapped(x: int):
    return [double.future(x)]


@app
def wrapped_return(x: int) -> list:
    try:
        returns_wrapped(x)
    except FunctionError as e:
        return [e.error_type, e.error_message]
    return []


@pytest.mark.parametrize(
    "fn,where",
    [
        (wrapped_in_list, "argument 'x' of ident() holds a Future inside a list"),
        (wrapped_in_dict, "argument 'x' of ident() holds a Future inside a dict"),
        (wrapped_in_dataclass, "argument 'x' of ident() holds a Future inside a Box"),
        (coroutine_in_list, "argument 'x' of ident() holds a coroutine inside a list"),
        (task_in_tuple, "argument 'x' of ident() holds an asyncio.Task inside a tuple"),
    ],
)
def test_wrapped_futures_are_refused_with_the_rule(fn, where):
    message = run_local_application(fn, 2).output()
    assert message.startswith(where)
    assert "never inside another object such as a list, dict or dataclass" in message


def test_wrapped_future_in_return_value_fails_the_call():
    error_type, message = run_local_application(wrapped_return, 1).output()
    assert error_type == "SerializationError"
    assert message.startswith("return value of returns_wrapped() holds a Future inside a list")


@app
def isolation(x: int) -> list:
    mine = ["parent"]
    out = mutate(mine)
    shared = ident.future(["value"])
    first = mutate(shared)
    second = ident(shared)
    out.append("parent-again")
    return [mine, out, first, second]


def test_mutations_never_leak_between_calls():
    mine, out, first, second = run_local_application(isolation, 0).output()
    assert mine == ["parent"]
    assert out == ["parent", "child", "parent-again"]
    assert first == ["value", "child"] and second == ["value"]


attempts_seen = []


@function(retries=Retries(max_retries=1, initial_delay=0.01))
def mutate_then_fail(items: list) -> list:
    attempts_seen.append(list(items))
    items.append("dirty")
    if len(attempts_seen) == 1:
        raise RuntimeError("first attempt fails")
    return items


@app
def retry_isolation(x: int) -> list:
    attempts_seen.clear()
    return mutate_then_fail(["clean"])


def test_a_retry_gets_fresh_inputs():
    assert run_local_application(retry_isolation, 0).output() == ["clean", "dirty"]
    assert attempts_seen == [["clean"], ["clean"]]


@app
def python_types(x: int) -> list:
    value = {1: (1, 2), "s": {3}, "b": b"\x00", "box": Box([1])}
    back = ident(value)
    return [back == value, type(back[1]).__name__, type(back["s"]).__name__]


def test_non_json_values_keep_their_python_types_inside_the_app():
    assert run_local_application(python_types, 0).output() == [True, "tuple", "set"]


@app
def unpicklable(x: int) -> str:
    try:
        ident(threading.Lock())
    except SerializationError as e:
        return str(e)
    return "no error"


def test_unpicklable_argument_names_the_parameter():
    assert run_local_application(unpicklable, 0).output().startswith(
        "argument 'x' of ident() cannot be serialized: TypeError"
    )


class Order(pydantic.BaseModel):
    item: str
    quantity: int


@app
def order_total(order: Order) -> Order:
    assert isinstance(order, Order)
    return Order(item=order.item.upper(), quantity=ident(order).quantity * 2)


def test_pydantic_models_cross_the_application_boundary_as_json():
    out = run_local_application(order_total, Order(item="tea", quantity=2)).output()
    assert out == Order(item="TEA", quantity=4)
    assert values.encode_app(Order(item="a", quantity=1), "x") == {"json": {"item": "a", "quantity": 1}}


@app
def file_roundtrip(f: File) -> File:
    return File(ident(f).content.upper(), "text/plain")


def test_file_values():
    out = run_local_application(file_roundtrip, File(b"abc", "text/plain")).output()
    assert out.content == b"ABC" and out.content_type == "text/plain"


def test_value_forms():
    assert values.encode({"a": [1, 2.5, None, True]}, "v") == {"json": {"a": [1, 2.5, None, True]}}
    assert "pickle" in values.encode((1, 2), "v")
    assert "pickle" in values.encode({1: "int key"}, "v")
    assert "pickle" in values.encode(float("nan"), "v")
    assert values.encode(2**53 - 1, "v") == {"json": 2**53 - 1}
    assert "pickle" in values.encode(2**53, "v")  # JavaScript peers would round it
    assert "pickle" in values.encode("\ud800", "v")
    assert values.decode(values.encode([2**64, "é"], "v"), "v") == [2**64, "é"]
    mixed = values.encode([1, (2,)], "v")
    assert mixed["list"][0] == {"json": 1} and "pickle" in mixed["list"][1]
    assert values.decode(mixed, "v") == [1, (2,)]
    with pytest.raises(Exception, match="unresolved call reference"):
        values.decode({"call": "x"}, "v")


async def plain_coroutine():
    return 1


@app
async def foreign_coroutine_argument(x: int) -> str:
    coro = plain_coroutine()
    try:
        ident(coro)
    except SerializationError as e:
        return str(e)
    finally:
        coro.close()
    return "no error"


def test_a_coroutine_that_is_not_a_trellis_call_is_refused():
    message = run_local_application(foreign_coroutine_argument, 0).output()
    assert message.startswith("argument 'x' of ident() is a coroutine or task that is not a call of a Trellis function")


def _explode():
    raise ValueError("cannot rebuild")


class BreaksOnLoad:
    def __reduce__(self):
        return (_explode, ())


@app
def undecodable(x: int) -> list:
    try:
        ident(BreaksOnLoad())
    except FunctionError as e:
        return [e.error_type, e.error_message]
    return []


def test_a_value_that_cannot_be_deserialized_fails_the_receiving_call():
    error_type, message = run_local_application(undecodable, 0).output()
    assert error_type == "DeserializationError"
    assert message == "argument 'x' of ident() cannot be deserialized: ValueError: cannot rebuild"
