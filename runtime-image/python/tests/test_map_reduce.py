"""map keeps input order; reduce is a left fold; items may be futures or lists of futures."""

import threading

import pytest

from tensorlake.applications import FunctionError, SDKUsageError, application, function, run_local_application

first_may_finish = threading.Event()
reducer_calls = []


@function()
def double(x: int) -> int:
    return x * 2


@function()
async def adouble(x: int) -> int:
    return x * 2


@function()
def ordered(x: int) -> int:
    # item 0 finishes last: it waits until item 2 has run
    if x == 0:
        assert first_may_finish.wait(10)
    if x == 2:
        first_may_finish.set()
    return x


@function()
def make_list(n: int) -> list:
    return list(range(n))


@function()
async def amake_list(n: int) -> list:
    return list(range(n))


@function()
def concat(a: str, b: str) -> str:
    reducer_calls.append((a, b))
    return a + b


@function()
def add(a: int, b: int) -> int:
    return a + b


@function()
async def aadd(a: int, b: int) -> int:
    return a + b


@function()
def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x


@function()
def not_a_list(x: int) -> int:
    return x


def app(fn):
    return application()(function()(fn))


@app
def map_order(x: int) -> list:
    first_may_finish.clear()
    return ordered.map([0, 1, 2, 3])


@app
def map_empty(x: int) -> list:
    return double.map([])


@app
def map_over_future(n: int) -> list:
    return double.map(make_list.future(n))


@app
def map_list_with_futures(x: int) -> list:
    return double.map([double.future(1), 5, double.future(x)])


@app
async def amap_over_coroutine(n: int) -> list:
    return await adouble.map(amake_list(n))


@app
def map_generator(n: int) -> list:
    return double.map(i for i in range(n))


@app
def reduce_fold(x: int) -> list:
    reducer_calls.clear()
    folded = concat.reduce(["a", "b", "c"])
    with_initial = concat.reduce(["a", "b"], "x")
    return [folded, with_initial, list(map(list, reducer_calls[:2]))]


@app
def reduce_single(x: int) -> list:
    reducer_calls.clear()
    return [concat.reduce(["only"]), len(reducer_calls)]


@app
def reduce_empty_with_initial(x: int) -> str:
    return concat.reduce([], "init")


@app
def reduce_empty(x: int) -> str:
    try:
        concat.reduce([])
    except SDKUsageError as e:
        return str(e)
    return "no error"


@app
def reduce_of_map(x: int) -> int:
    return add.reduce(double.future.map([1, 2, 3]))


@app
def reduce_future_initial(x: int) -> int:
    return add.reduce([1, 2], double.future(x))


@app
def reduce_empty_future(x: int) -> str:
    try:
        return str(add.reduce(make_list.future(0)))
    except FunctionError as e:
        return f"{e.error_type}: {e.error_message}"


@app
async def areduce(x: int) -> int:
    return await aadd.reduce([1, 2, 3, 4])


@app
def map_item_fails(x: int) -> str:
    try:
        fail_on_three.map([1, 2, 3, 4])
    except FunctionError as e:
        return str(e)
    return "no error"


@app
def map_bad_items(x: int) -> str:
    try:
        double.map(5)
    except SDKUsageError as e:
        return str(e)
    return "no error"


@app
def map_future_not_list(x: int) -> str:
    try:
        double.map(not_a_list.future(x))
    except FunctionError as e:
        return f"{e.error_type}: {e.error_message}"
    return "no error"


@app
def big_map(n: int) -> int:
    return sum(double.map(list(range(n))))


@pytest.mark.parametrize(
    "fn,arg,expected",
    [
        (map_order, 0, [0, 1, 2, 3]),
        (map_empty, 0, []),
        (map_over_future, 4, [0, 2, 4, 6]),
        (map_list_with_futures, 3, [4, 10, 12]),
        (amap_over_coroutine, 3, [0, 2, 4]),
        (map_generator, 3, [0, 2, 4]),
        (reduce_fold, 0, ["abc", "xab", [["a", "b"], ["ab", "c"]]]),
        (reduce_single, 0, ["only", 0]),
        (reduce_empty_with_initial, 0, "init"),
        (reduce_of_map, 0, 12),
        (reduce_future_initial, 5, 13),
        (areduce, 0, 10),
        (big_map, 2000, 2 * sum(range(2000))),
    ],
    ids=lambda v: getattr(v, "_name", None),
)
def test_map_reduce(fn, arg, expected):
    assert run_local_application(fn, arg).output() == expected


def test_reduce_of_empty_list_without_initial_is_a_usage_error():
    message = run_local_application(reduce_empty, 0).output()
    assert "concat.reduce(items) got an empty list and no initial value" in message


def test_reduce_of_empty_future_without_initial_fails_the_reduce():
    assert run_local_application(reduce_empty_future, 0).output().startswith("SDKUsageError: reduce() of an empty list")


def test_map_fails_when_an_item_fails():
    assert run_local_application(map_item_fails, 0).output() == "function 'fail_on_three' failed: ValueError: three"


def test_map_items_must_be_a_list():
    assert "items must be a list" in run_local_application(map_bad_items, 0).output()
    assert "items must be a list" in run_local_application(map_future_not_list, 1).output()
