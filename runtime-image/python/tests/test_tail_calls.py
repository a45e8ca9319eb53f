"""Tail calls: returning a future/coroutine/task delegates the call's output, at any depth."""

import sys
import threading

from tensorlake.applications import FunctionError, application, function, run_local_application

depths = []
depths_lock = threading.Lock()


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return depth


@application()
@function()
def countdown(n: int) -> int:
    with depths_lock:
        depths.append(_stack_depth())
    if n == 0:
        return 0
    return countdown.future(n - 1)


@application()
@function()
async def acountdown(n: int) -> str:
    if n == 0:
        return "done"
    return acountdown(n - 1)


def test_ten_thousand_deep_sync_tail_recursion_keeps_a_flat_stack():
    depths.clear()
    assert run_local_application(countdown, 10_000).output() == 0
    assert len(depths) == 10_001
    assert max(depths) == min(depths)  # no link runs deeper than the first


def test_ten_thousand_deep_async_tail_recursion():
    assert run_local_application(acountdown, 10_000).output() == "done"


@function()
def double(x: int) -> int:
    return x * 2


@function()
def add(a: int, b: int) -> int:
    return a + b


@function()
def boom(x: int) -> int:
    raise KeyError("lost")


@application()
@function()
def tail_with_inputs(x: int) -> int:
    return add.future(double.future(x), double.future(1))


@application()
@function()
def tail_map(x: int) -> list:
    return double.future.map([x, x + 1])


@application()
@function()
def tail_reduce(x: int) -> int:
    return add.future.reduce([1, 2, x])


@function()
def returns_started(x: int):
    f = double.future(x).run()
    return f


@application()
@function()
def started_future_returned(x: int) -> str:
    try:
        returns_started(x)
    except FunctionError as e:
        return f"{e.error_type}: {e.error_message}"
    return "no error"


@function()
def tail_to_failure(x: int):
    return boom.future(x)


@application()
@function()
def catches_tail_failure(x: int) -> str:
    try:
        tail_to_failure(x)
    except FunctionError as e:
        return str(e)
    return "no error"


@function()
def middle(x: int):
    return double.future(x)


@application()
@function()
def awaits_a_delegated_call(x: int) -> int:
    return middle(x) + 1


def test_tail_call_with_inputs():
    assert run_local_application(tail_with_inputs, 4).output() == 10


def test_tail_call_to_map_and_reduce():
    assert run_local_application(tail_map, 1).output() == [2, 4]
    assert run_local_application(tail_reduce, 3).output() == 6


def test_returning_a_started_future_is_a_usage_error():
    out = run_local_application(started_future_returned, 1).output()
    assert out.startswith("SDKUsageError: A tail call Future Tensorlake Function Call Future double(\n  1,\n) "
                          "returned from function ")
    assert out.endswith("is already running, a tail call Future should not be started.")


def test_failure_at_the_end_of_a_tail_chain_reaches_the_caller():
    assert run_local_application(catches_tail_failure, 1).output() == "function 'boom' failed: KeyError: 'lost'"


def test_caller_gets_the_value_of_a_delegated_call():
    assert run_local_application(awaits_a_delegated_call, 3).output() == 7
