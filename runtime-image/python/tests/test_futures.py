"""Future: run, run_later, result, done, exception, coroutine, await, Future.wait."""

import threading
import time


from tensorlake.applications import (
    RETURN_WHEN,
    Future,
    FunctionError,
    SDKUsageError,
    TimeoutError,
    application,
    function,
    run_local_application,
)

gate = threading.Event()
barrier = threading.Barrier(3, timeout=10)


@function()
def double(x: int) -> int:
    return x * 2


@function()
def blocked(x: int) -> int:
    gate.wait(20)
    return x


@function()
def fails(x: int) -> int:
    raise ValueError(f"no {x}")


@function()
def meet(x: int) -> int:
    barrier.wait()  # passes only if three calls run at the same time
    return x


@application()
@function()
def future_basics(x: int) -> dict:
    f = double.future(x)
    assert not f.done() and f.exception is None
    same = f.run()
    value = f.result()
    try:
        f.run()
        rerun = "no error"
    except SDKUsageError as e:
        rerun = str(e)
    return {"same": same is f, "value": value, "done": f.done(), "again": f.result(), "rerun": rerun}


def test_future_run_result_done():
    out = run_local_application(future_basics, 4).output()
    assert out["same"] and out["value"] == 8 and out["done"] and out["again"] == 8
    assert "already started" in out["rerun"]


@application()
@function()
def failed_future(x: int) -> list:
    f = fails.future(x)
    try:
        f.result()
    except FunctionError as e:
        caught = str(e)
    return [caught, isinstance(f.exception, FunctionError), f.done()]


def test_failed_future_raises_function_error_and_keeps_exception():
    caught, is_fe, done = run_local_application(failed_future, 3).output()
    assert caught == "function 'fails' failed: ValueError: no 3"
    assert is_fe and done


@application()
@function()
def parallel_three(x: int) -> list:
    futures = [meet.future(i).run() for i in range(3)]
    return [f.result() for f in futures]


def test_started_futures_run_in_parallel():
    assert run_local_application(parallel_three, 0).output() == [0, 1, 2]


@application()
@function()
def wait_modes(x: int) -> dict:
    gate.clear()
    slow = blocked.future(1)
    fast = double.future(2)
    bad = fails.future(3)
    done, not_done = Future.wait([slow, fast], return_when=RETURN_WHEN.FIRST_COMPLETED)
    first = ([f is fast for f in done], [f is slow for f in not_done])
    done2, not_done2 = Future.wait([slow, bad, fast], return_when=RETURN_WHEN.FIRST_FAILURE)
    second = (len(done2), [f is slow for f in not_done2], isinstance(bad.exception, FunctionError))
    done3, not_done3 = Future.wait([slow], timeout=0.05)
    third = (len(done3), len(not_done3))
    gate.set()
    done4, not_done4 = Future.wait([slow, bad, fast])
    fourth = ([f is g for f, g in zip(done4, [slow, bad, fast])], len(not_done4))
    return {"first": first, "second": second, "third": third, "fourth": fourth}


def test_future_wait_return_when_and_order():
    out = run_local_application(wait_modes, 0).output()
    # the output crosses the application boundary as JSON by its `-> dict` hint: tuples become lists
    assert out["first"] == [[True], [True]]
    assert out["second"] == [2, [True], True]
    # As in Tensorlake: a wait that times out returns the running futures as done, with TimeoutError.
    assert out["third"] == [1, 0]
    assert out["fourth"] == [[True, True, True], 0]


@application()
@function()
def result_timeout(x: int) -> str:
    gate.clear()
    f = blocked.future(x)
    try:
        f.result(timeout=0.05)
        message = "no timeout"
    except TimeoutError as e:
        message = type(e).__name__
    gate.set()
    # As in Tensorlake: the timed-out future is done, its exception the TimeoutError.
    again = f.done() and isinstance(f.exception, TimeoutError)
    try:
        f.result()
        again = False
    except TimeoutError:
        pass
    return f"{message} then done={again}"


def test_result_timeout_raises_timeout_error():
    assert run_local_application(result_timeout, 7).output() == "TimeoutError then done=True"


@application()
@function()
def wait_validation(x: int) -> list:
    errors = []
    for call in (
        lambda: Future.wait([double.future(1)], timeout=-1),
        lambda: Future.wait([double.future(1)], return_when="ALL"),
        lambda: Future.wait([1]),
        lambda: double.future(1).run_later(-2),
        lambda: double.future(1).result(timeout="soon"),
    ):
        try:
            call()
            errors.append("no error")
        except SDKUsageError as e:
            errors.append(str(e))
    return errors


def test_wait_and_run_later_validation():
    errors = run_local_application(wait_validation, 0).output()
    assert "Future.wait timeout must be a non-negative finite number" in errors[0]
    # Tensorlake's texts.
    assert errors[1] == "Not supported return_when value: 'ALL'"
    assert errors[2] == "Cannot run a non-Future object 1."
    assert errors[3] == "Future delay must be a non-negative finite number."
    assert "timeout must be a non-negative finite number" in errors[4]


@application()
@function()
def later(x: int) -> float:
    start = time.monotonic()
    value = double.future(x).run_later(0.2).result()
    assert value == x * 2
    return time.monotonic() - start


def test_run_later_delays_the_start():
    assert run_local_application(later, 1).output() >= 0.2


@application()
@function()
async def coroutine_forms(x: int) -> list:
    f = double.future(x)
    coro = f.coroutine()
    same = f.coroutine() is coro
    value = await coro
    try:
        await coro
        twice = "no error"
    except RuntimeError as e:
        twice = str(e)
    g = double.future(x).run()
    try:
        g.coroutine()
        started = "no error"
    except SDKUsageError as e:
        started = str(e)
    return [same, value, twice, "already running" in started, await g]


def test_future_coroutine_rules():
    same, value, twice, started, awaited = run_local_application(coroutine_forms, 5).output()
    assert same and value == 10 and started and awaited == 10
    assert twice == "cannot reuse already awaited coroutine"


@application()
@function()
def coroutine_from_sync(x: int) -> str:
    try:
        double.future(x).coroutine()
    except SDKUsageError as e:
        return str(e)
    return "no error"


def test_future_coroutine_in_sync_function_is_an_error():
    assert "only be called from an async function" in run_local_application(coroutine_from_sync, 1).output()


@function()
def add(a: int, b: int) -> int:
    return a + b


@application()
@function()
def shared_input(x: int) -> list:
    d = double.future(x)
    return [add.future(d, 1).result(), add.future(d, d).result(), d.result()]


def test_one_future_feeds_several_calls():
    assert run_local_application(shared_input, 3).output() == [7, 12, 6]


@function()
def meet_and_double(x: int) -> int:
    barrier.wait()
    return x * 2


@function()
def add3(a: int, b: int, c: int) -> int:
    return a + b + c


@application()
@function()
def parallel_inputs(x: int) -> int:
    # three independent inputs must run at the same time (the barrier needs all three)
    return add3(meet_and_double.future(1), meet_and_double.future(2), meet_and_double.future(3))


def test_independent_inputs_run_in_parallel():
    assert run_local_application(parallel_inputs, 0).output() == 12


@application()
@function()
def failed_input(x: int) -> str:
    try:
        add(fails.future(x), 1)
    except FunctionError as e:
        return str(e)
    return "no error"


def test_a_failed_input_fails_the_dependent_call():
    assert run_local_application(failed_input, 2).output() == "function 'fails' failed: ValueError: no 2"
