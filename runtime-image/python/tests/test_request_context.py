"""RequestContext: request id, headers, shared state, validated progress, metrics."""

import threading

import pytest

from tensorlake.applications import RequestContext, SDKUsageError, application, function, run_local_application


@function()
def writer(key: str, value) -> None:
    RequestContext.get().state.set(key, value)


@function()
def reader(key: str):
    return RequestContext.get().state.get(key, "missing")


@function()
def child_request_id(x: int) -> str:
    return RequestContext.get().request_id


@application()
@function()
def context_app(x: int) -> dict:
    ctx = RequestContext.get()
    writer("list", [1, 2])
    got = reader("list")
    got.append(3)  # a fresh copy: state is not changed by mutating what get() returned
    ctx.state.set("n", x)
    ctx.progress.update(1, 4, "first quarter", {"stage": "a"})
    ctx.progress.update(2.5, 4)
    ctx.metrics.counter("items")
    ctx.metrics.counter("items", 2)
    ctx.metrics.timer("step", 0.25)
    return {
        "same_id": child_request_id(x) == ctx.request_id,
        "id": ctx.request_id,
        "headers": dict(ctx.headers),  # a Headers object is not JSON (as in Tensorlake)
        "list": reader("list"),
        "missing": reader("nope"),
        "n": reader("n"),
    }


def test_request_context_in_every_function_of_a_request():
    request = run_local_application(context_app, 5)
    out = request.output()
    assert out["same_id"] and out["id"] == request.id
    assert out["headers"] == {}
    assert out["list"] == [1, 2] and out["missing"] == "missing" and out["n"] == 5
    assert [(p["current"], p["total"], p["message"]) for p in request.progress_updates] == [
        (1, 4, "first quarter"),
        (2.5, 4, None),
    ]
    assert request.progress_updates[0]["attributes"] == {"stage": "a"}
    assert request.metrics["counters"] == {"items": 3}
    assert request.metrics["timers"] == [("step", 0.25)]


def test_state_is_per_request():
    @application()
    @function()
    def counter_app(x: int) -> int:
        state = RequestContext.get().state
        state.set("n", state.get("n", 0) + x)
        return state.get("n")

    assert run_local_application(counter_app, 2).output() == 2
    assert run_local_application(counter_app, 3).output() == 3


@application()
@function()
def bad_usage(x: int) -> list:
    ctx = RequestContext.get()
    errors = []
    for call in (
        lambda: ctx.progress.update("1", 2),
        lambda: ctx.progress.update(1, float("inf")),
        lambda: ctx.progress.update(-1, 2),
        lambda: ctx.progress.update(10**1000, 1),
        lambda: ctx.progress.update(True, 1),
        lambda: ctx.progress.update(1, 2, message=3),
        lambda: ctx.progress.update(1, 2, attributes={"a": 1}),
        lambda: ctx.state.set("", 1),
        lambda: ctx.state.get(3),
        lambda: ctx.metrics.counter("", 1),
        lambda: ctx.metrics.counter("c", 1.5),
        lambda: ctx.metrics.timer("t", -1),
    ):
        try:
            call()
            errors.append("no error")
        except SDKUsageError as e:
            errors.append(str(e))
    return errors


def test_progress_state_and_metrics_are_validated():
    errors = run_local_application(bad_usage, 0).output()
    expected = [  # Tensorlake's texts
        "'current' needs to be a number, got: 1",
        "'total' needs to be a number, got: inf",
        "'current' needs to be a number, got: -1",
        "'current' needs to be a number, got: 1000",
        "'current' needs to be a number, got: True",
        "'message' needs to be a string, got: 3",
        "'attributes' value 1 for key 'a' needs to be a string",
        "State key must be a string, got: ",
        "State key must be a string, got: 3",
        "Counter name must be a string, got: ",
        "Counter value must be an int, got: 1.5",
        "Timer value must be a finite number, got: -1",
    ]
    assert len(errors) == len(expected)
    for got, want in zip(errors, expected):
        assert got.startswith(want), (got, want)


def test_request_context_outside_a_call_is_an_error():
    with pytest.raises(SDKUsageError, match="Tensorlake SDK was called outside of a Tensorlake Function thread or process"):
        RequestContext.get()


@application()
@function()
def from_a_thread(x: int) -> str:
    result = []

    def run():
        try:
            RequestContext.get()
            result.append("no error")
        except SDKUsageError:
            result.append("SDKUsageError")

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return result[0]


def test_request_context_in_a_thread_started_by_user_code_is_an_error():
    assert run_local_application(from_a_thread, 0).output() == "SDKUsageError"
