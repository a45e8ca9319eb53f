"""Errors, RequestError, RequestFailed reasons, retries with backoff, timeouts."""

import asyncio
import threading
import time

import pytest

from tensorlake.applications import (
    FunctionError,
    RequestError,
    RequestFailed,
    Retries,
    TensorlakeError,
    TrellisError,
    application,
    function,
    run_local_application,
)

counts: dict[str, int] = {}
release = threading.Event()


def bump(name: str) -> int:
    counts[name] = counts.get(name, 0) + 1
    return counts[name]


@function()
def boom(x: int) -> int:
    raise ValueError(f"boom {x}")


@function()
def reject(x: int) -> int:
    bump("reject")
    raise RequestError(f"Input {x} is not allowed.")


def app(fn=None, **kwargs):
    def wrap(f):
        return application(**kwargs)(function()(f))

    return wrap(fn) if fn is not None else wrap


@app
def uncaught(x: int) -> int:
    return boom(x)


@app
def caught(x: int) -> str:
    try:
        boom(x)
    except FunctionError as e:
        return f"recovered from {e.error_type}"


@app(retries=Retries(max_retries=3, initial_delay=0.01))
def request_error_propagates(x: int) -> int:
    return reject(x) + 1


@app
def request_error_caught(x: int) -> str:
    try:
        reject(x)
    except RequestError as e:
        return f"caught: {e.message}"


@app
def raises_request_error_itself(x: int) -> int:
    raise RequestError("exact message, kept as is")


def test_uncaught_function_error_fails_the_request(capsys):
    with pytest.raises(RequestFailed) as info:
        run_local_application(uncaught, 1).output()
    assert str(info.value) == "function_error" and info.value.reason == "function_error"
    err = capsys.readouterr().err
    assert "Request failed: function 'uncaught' FunctionError: function 'boom' failed: ValueError: boom 1" in err


def test_function_error_is_catchable_in_the_caller():
    assert run_local_application(caught, 1).output() == "recovered from ValueError"


def test_request_error_fails_the_request_with_its_message_and_is_never_retried():
    counts.clear()
    with pytest.raises(RequestError) as info:
        run_local_application(request_error_propagates, 7).output()
    assert info.value.message == "Input 7 is not allowed."
    assert isinstance(info.value, RequestFailed) and isinstance(info.value, TensorlakeError)
    assert counts["reject"] == 1


def test_request_error_of_a_child_fails_the_request_even_if_caught():
    # As in Tensorlake: a child's RequestError fails the whole request; the parent cannot catch it.
    with pytest.raises(RequestError) as info:
        run_local_application(request_error_caught, 3).output()
    assert info.value.message == "Input 3 is not allowed."


def test_request_error_raised_by_the_application():
    with pytest.raises(RequestError, match="^exact message, kept as is$"):
        run_local_application(raises_request_error_itself, 0).output()


def test_trellis_error_is_the_tensorlake_base():
    assert TrellisError is TensorlakeError
    assert issubclass(FunctionError, TrellisError) and issubclass(RequestFailed, TrellisError)


@function(retries=Retries(max_retries=2, initial_delay=0.05, delay_multiplier=2))
def flaky(x: int) -> int:
    if bump("flaky") < 3:
        raise ConnectionError("transient")
    return x


@app
def uses_flaky(x: int) -> float:
    start = time.monotonic()
    assert flaky(x) == x
    return time.monotonic() - start


def test_retries_with_backoff():
    counts.clear()
    elapsed = run_local_application(uses_flaky, 1).output()
    assert counts["flaky"] == 3
    assert elapsed >= 0.05 + 0.1  # waits 0.05 s then 0.1 s


@function(retries=Retries(max_retries=1, initial_delay=0.01))
def always_fails(x: int) -> int:
    bump("always")
    raise ValueError("still broken")


@app
def exhausts(x: int) -> int:
    return always_fails(x)


def test_retries_are_bounded():
    counts.clear()
    with pytest.raises(RequestFailed, match="function_error"):
        run_local_application(exhausts, 1).output()
    assert counts["always"] == 2


@function()
def app_retried(x: int) -> int:
    if bump("app_retried") < 2:
        raise ValueError("once")
    return x


@app(retries=Retries(max_retries=1, initial_delay=0.01))
def app_level_retries(x: int) -> int:
    return app_retried(x)


def test_application_retries_apply_to_functions_without_their_own():
    counts.clear()
    assert run_local_application(app_level_retries, 4).output() == 4
    assert counts["app_retried"] == 2


@function(timeout=0.2)
def hangs(x: int) -> int:
    release.wait(30)
    return x


@function(timeout=0.2)
async def ahangs(x: int) -> int:
    await asyncio.sleep(30)
    return x


@app
def times_out(x: int) -> int:
    return hangs(x)


@app
def catches_timeout(x: int) -> list:
    try:
        hangs(x)
    except FunctionError as e:
        return [e.reason, str(e)]


@app
async def async_times_out(x: int) -> int:
    return await ahangs(x)


@function(timeout=0.2, retries=Retries(max_retries=1, initial_delay=0.01))
def slow_then_fast(x: int) -> int:
    if bump("slow_then_fast") == 1:
        release.wait(30)
    return x


@app
def timeout_then_retry(x: int) -> int:
    return slow_then_fast(x)


def test_timeout_fails_the_request_with_function_timeout():
    release.clear()
    try:
        with pytest.raises(RequestFailed) as info:
            run_local_application(times_out, 1).output()
        assert str(info.value) == "function_timeout"
    finally:
        release.set()


def test_timeout_is_a_function_error_in_the_caller():
    release.clear()
    try:
        reason, message = run_local_application(catches_timeout, 1).output()
    finally:
        release.set()
    assert reason == "function_timeout"
    assert message == "function 'hangs' timed out: attempt 1 ran longer than the function's timeout of 0.2 seconds"


def test_async_timeout_cancels_the_call():
    with pytest.raises(RequestFailed, match="function_timeout"):
        run_local_application(async_times_out, 1).output()


def test_a_timed_out_attempt_is_retried():
    counts.clear()
    release.clear()
    try:
        assert run_local_application(timeout_then_retry, 9).output() == 9
    finally:
        release.set()
    assert counts["slow_then_fast"] == 2
