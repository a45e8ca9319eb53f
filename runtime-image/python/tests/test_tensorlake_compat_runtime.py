"""Runtime behaviour kept as Tensorlake Applications has it (issue 8): request errors of children,
timed-out futures, SDK use from child processes, local progress/metrics lines, logger keys and
the texts of SDK usage errors. Locally and, where the worker path differs, through the worker."""

import asyncio
import json
import multiprocessing as mp
import threading
import time

import pytest

from trellis import (
    Future,
    FunctionError,
    Logger,
    RequestContext,
    RequestError,
    SDKUsageError,
    TimeoutError,
    application,
    function,
    run_local_application,
)

OUTSIDE = (
    "Tensorlake SDK was called outside of a Tensorlake Function thread or process."
    "Please only call Tensorlake SDK from Tensorlake Functions."
)
NOT_INITIALIZED = (
    "Tensorlake SDK is not initialized. If you are using multiprocessing, please note that "
    "only a RequestContext created in the main process can be used in child processes. "
    "Other SDK features are not available in child processes at the moment."
)


# -- 1. a child's RequestError fails the whole request --------------------------------------------
@function()
def compat_reject(x: int) -> int:
    raise RequestError(f"rejected {x}")


@function()
async def compat_areject(x: int) -> int:
    raise RequestError(f"async rejected {x}")


@application()
@function()
def compat_catches_request_error(x: int) -> str:
    try:
        compat_reject(x)
    except (RequestError, FunctionError) as e:
        return f"caught {e}"
    return "not raised"


@application()
@function()
async def compat_gathers_request_error(x: int) -> str:
    try:
        await asyncio.gather(compat_areject(x), compat_areject(x + 1))
    except Exception as e:  # noqa: BLE001
        return f"caught {e}"
    return "not raised"


@application()
@function()
def compat_never_waits(x: int) -> str:
    compat_reject.future(x).run()
    time.sleep(5)
    return "finished"


def test_child_request_error_cannot_be_caught_by_the_parent():
    with pytest.raises(RequestError) as info:
        run_local_application(compat_catches_request_error, 3).output()
    assert info.value.message == "rejected 3"


def test_child_request_error_through_asyncio_gather_fails_the_request():
    with pytest.raises(RequestError) as info:
        run_local_application(compat_gathers_request_error, 1).output()
    assert info.value.message in ("async rejected 1", "async rejected 2")


def test_child_request_error_fails_the_request_at_once_even_if_not_waited_for():
    start = time.monotonic()
    with pytest.raises(RequestError, match="^rejected 4$"):
        run_local_application(compat_never_waits, 4).output()
    assert time.monotonic() - start < 4


# -- 2. timed-out futures, reduce over a str -----------------------------------------------------
_gate = threading.Event()


@function()
def compat_slow(x: int) -> int:
    _gate.wait(10)
    return x


@application()
@function()
def compat_timeouts(x: int) -> list:
    _gate.clear()
    f = compat_slow.future(x)
    try:
        f.result(timeout=0.05)
        raised = "no"
    except TimeoutError as e:
        raised = str(e)
    marked = [f.done(), isinstance(f.exception, TimeoutError)]
    g = compat_slow.future(x).run()
    done, not_done = Future.wait([g], timeout=0.05)
    waited = [len(done), len(not_done), g.done(), isinstance(g.exception, TimeoutError)]
    _gate.set()
    return [raised, marked, waited]


def test_timed_out_future_is_done_with_timeout_error():
    raised, marked, waited = run_local_application(compat_timeouts, 1).output()
    assert raised == "Timed out."
    assert marked == [True, True]
    assert waited == [1, 0, True, True]


@function()
def compat_concat(a: str, b: str) -> str:
    return a + "-" + b


@function()
def compat_word(x: str) -> str:
    return x


@application()
@function()
def compat_reduce_future_str(x: str) -> str:
    return compat_concat.reduce(compat_word.future(x))


@application()
@function()
def compat_reduce_str(x: str) -> str:
    return compat_concat.reduce(x)


def test_reduce_over_a_str_iterates_its_characters():
    assert run_local_application(compat_reduce_str, "xyz").output() == "x-y-z"


def test_reduce_over_a_str_output_iterates_its_characters():
    assert run_local_application(compat_reduce_future_str, "abc").output() == "a-b-c"


# -- 3. the SDK from child processes -------------------------------------------------------------
def _mp_run_future(q) -> None:
    try:
        compat_slow.future(1).run()
        q.put("no error")
    except Exception as e:  # noqa: BLE001
        q.put(f"{type(e).__name__}: {e}")


def _mp_get_context(q) -> None:
    try:
        RequestContext.get()
        q.put("no error")
    except Exception as e:  # noqa: BLE001
        q.put(f"{type(e).__name__}: {e}")


def _mp_use_context(ctx, q) -> None:
    try:
        ctx.state.set("child_key", {"from": "child"})
        ctx.progress.update(1, 2, "half")
        ctx.metrics.counter("child_counter", 2)
        q.put([ctx.request_id, ctx.state.get("parent_key")])
    except Exception as e:  # noqa: BLE001
        q.put(f"{type(e).__name__}: {e}")


def _thread_result(target, *args):
    out: list = []
    t = threading.Thread(target=lambda: target(*args, _ListQueue(out)))
    t.start()
    t.join()
    return out[0]


class _ListQueue:
    def __init__(self, out: list) -> None:
        self.out = out

    def put(self, value) -> None:
        self.out.append(value)


@application()
@function()
def compat_multiprocessing(method: str) -> dict:
    mpc = mp.get_context(method)
    out = {}
    for name, target in (("run_future", _mp_run_future), ("get_context", _mp_get_context)):
        q = mpc.Queue()
        p = mpc.Process(target=target, args=(q,))
        p.start()
        out[name] = q.get(timeout=30)
        p.join(30)
    ctx = RequestContext.get()
    ctx.state.set("parent_key", "from parent")
    q = mpc.Queue()
    p = mpc.Process(target=_mp_use_context, args=(ctx, q))
    p.start()
    out["use_context"] = q.get(timeout=30)
    p.join(30)
    out["child_state"] = ctx.state.get("child_key")
    out["request_id"] = ctx.request_id
    # the context also travels through a queue (pickled)
    q2 = mpc.Queue()
    q2.put(ctx)
    out["pickled_id"] = q2.get(timeout=30).request_id
    out["thread_get_context"] = _thread_result(_mp_get_context)
    out["thread_run_future"] = _thread_result(_mp_run_future)
    return out


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_sdk_from_child_processes(method):
    assert method in mp.get_all_start_methods()  # Linux has both
    request = run_local_application(compat_multiprocessing, method)
    out = request.output()
    assert out["run_future"] == f"SDKUsageError: {NOT_INITIALIZED}"
    assert out["get_context"] == f"SDKUsageError: {OUTSIDE}"
    assert out["use_context"] == [out["request_id"], "from parent"]
    assert out["child_state"] == {"from": "child"}
    assert out["pickled_id"] == out["request_id"]
    assert out["thread_get_context"] == f"SDKUsageError: {OUTSIDE}"
    assert out["thread_run_future"] == f"SDKUsageError: {OUTSIDE}"
    assert request.metrics["counters"]["child_counter"] == 2
    assert [(p["current"], p["total"], p["message"]) for p in request.progress_updates] == [(1.0, 2.0, "half")]


# -- 4. local progress/metrics lines, logger keys ------------------------------------------------
@application()
@function()
def compat_reports(x: int) -> str:
    ctx = RequestContext.get()
    ctx.progress.update(1, 4)
    ctx.progress.update(2.5, 4, "more", {"k": "v"})
    ctx.metrics.counter("test_counter")
    ctx.metrics.timer("test_timer", 2.5)
    return "ok"


def test_local_mode_prints_progress_and_metrics_lines(capsys):
    request = run_local_application(compat_reports, 0)
    assert request.output() == "ok"
    out = capsys.readouterr().out
    assert "Progress Update: {" in out
    assert f"'request_id': '{request.id}'" in out
    assert "'function_name': 'compat_reports'" in out
    assert "'message': 'compat_reports: executing step 1 of 4', 'step': 1, 'total': 4" in out
    assert "'message': 'more', 'step': 2.5, 'total': 4, 'attributes': {'k': 'v'}" in out
    assert "Counter Incremented: " in out and "'counter_name': 'test_counter'" in out and "'counter_inc': 1" in out
    assert "Timer Recorded: " in out and "'timer_name': 'test_timer'" in out and "'timer_value': 2.5" in out


def test_logger_writes_event_level_timestamp_and_exception(capsys):
    logger = Logger.get_logger(module="test").bind(request_id="123")
    logger.info("info message", items=3)
    try:
        raise ValueError("test error")
    except ValueError as e:
        logger.error("with exception", exc_info=e)
    logger.warning("odd", obj=object())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["event"], r["level"]) for r in lines] == [
        ("info message", "info"), ("with exception", "error"), ("odd", "warning")]
    assert "message" not in lines[0]
    assert (lines[0]["module"], lines[0]["request_id"], lines[0]["items"]) == ("test", "123", 3)
    assert lines[0]["timestamp"].endswith("Z")
    assert "ValueError: test error" in lines[1]["exception"] and "Traceback" in lines[1]["exception"]
    assert lines[2]["obj"].startswith("<object object")


# -- 5. SDK usage error texts --------------------------------------------------------------------
@function()
def compat_double(x: int) -> int:
    return x * 2


@application()
@function()
async def compat_texts(x: int) -> list:
    errors = []
    started = compat_double.future(x).run()
    checks = (
        lambda: started.run(),
        lambda: started.coroutine(),
        lambda: compat_double.future(x).run_later(-1),
        lambda: Future.wait([compat_double.future(x)], timeout=-1),
        lambda: Future.wait([compat_double.future(x)], return_when="ALL"),
        lambda: Future.wait([5]),
    )
    for check in checks:
        try:
            check()
            errors.append("no error")
        except SDKUsageError as e:
            errors.append(str(e))
    await started
    return errors


def test_sdk_usage_error_texts_are_tensorlakes():
    errors = run_local_application(compat_texts, 1).output()
    assert errors[0].startswith("Attempt to run Future that is already started: ")
    assert errors[1].startswith("Future.coroutine() cannot be called on a Future that is already running: ")
    assert errors[2] == "Future delay must be a non-negative finite number."
    assert errors[3] == "Future.wait timeout must be a non-negative finite number."
    assert errors[4] == "Not supported return_when value: 'ALL'"
    assert errors[5] == "Cannot run a non-Future object 5."


def test_future_coroutine_from_sync_code_text():
    @application()
    @function()
    def compat_sync_coroutine(x: int) -> str:
        try:
            compat_double.future(x).coroutine()
        except SDKUsageError as e:
            return str(e)
        return "no error"

    assert run_local_application(compat_sync_coroutine, 1).output() == (
        "Future.coroutine() can only be called from an async function. "
        "Use Future.result() to get the result in a sync function."
    )


# -- through the worker --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def worker():
    from sidecar import Sidecar

    sidecar = Sidecar(module="test_tensorlake_compat_runtime", concurrency=4)
    sidecar.handshake()
    yield sidecar
    assert sidecar.close() == 0


@pytest.mark.parametrize("function_name", ["compat_catches_request_error", "compat_gathers_request_error"])
def test_worker_parent_cannot_swallow_a_child_request_error(worker, function_name):
    call = "rcompat-" + function_name.replace("_", "-")
    worker.send({"type": "assign", "call": call, "attempt": 1, "request": call, "function": function_name,
                 "args": [{"json": 5}], "kwargs": {}, "headers": {}})
    created = worker.expect("calls", call=call)["calls"]
    child = created[0]
    worker.send({"type": "resolved", "id": child["id"], "error": {
        "type": "RequestError", "module": "trellis.interface.exceptions", "message": "no thanks",
        "traceback": "", "function": child["function"], "call": child["id"], "request_error": True,
        "reason": "request_error", "retryable": False}})
    failure = worker.expect("failure", call=call)["error"]
    assert failure["request_error"] is True and failure["retryable"] is False
    assert failure["reason"] == "request_error" and failure["message"] == "no thanks"
    assert failure["function"] == function_name and failure["call"] == call


def _fork_child_sets_state(ctx, q) -> None:
    try:
        ctx.state.set("from_child", 41)
        ctx.metrics.counter("child_counter", 1)
        q.put(None)
    except Exception as e:  # noqa: BLE001
        q.put(f"{type(e).__name__}: {e}")


@application()
@function()
def compat_worker_fork(x: int) -> str:
    mpc = mp.get_context("fork")
    q = mpc.Queue()
    p = mpc.Process(target=_mp_run_future, args=(q,))
    p.start()
    run_future = q.get(timeout=30)
    p.join(30)
    ctx = RequestContext.get()
    p = mpc.Process(target=_fork_child_sets_state, args=(ctx, q))
    p.start()
    child = q.get(timeout=30)
    p.join(30)
    return f"{run_future == f'SDKUsageError: {NOT_INITIALIZED}'} {child}"


def test_worker_request_context_from_a_forked_child(worker):
    call = "rcompat-fork"
    worker.send({"type": "assign", "call": call, "attempt": 1, "request": call, "function": "compat_worker_fork",
                 "args": [{"json": 1}], "kwargs": {}, "headers": {}})
    set_msg = worker.expect("state_set", call=call, timeout=30)
    assert (set_msg["key"], set_msg["value"]) == ("from_child", {"json": 41})
    worker.send({"type": "reply", "rid": set_msg["rid"], "ok": True})
    metric = worker.expect("metric", call=call)
    assert (metric["kind"], metric["name"], metric["value"]) == ("counter", "child_counter", 1)
    assert worker.expect("result", call=call, timeout=30)["output"] == {"json": "True None"}
