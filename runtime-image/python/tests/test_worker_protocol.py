"""Drives `python -m trellis.worker` over its Unix socket exactly as the sidecar does."""

import time

import pytest

from sidecar import Sidecar
from trellis._core.ids import child_id

REQ = "rprotocol"


@pytest.fixture(scope="module")
def sc():
    sidecar = Sidecar(concurrency=8)
    sidecar.hello = sidecar.handshake()
    yield sidecar
    assert sidecar.close() == 0


def assign(sc, call, function, *args, attempt=1, request=REQ, **kwargs):
    sc.send({"type": "assign", "call": call, "attempt": attempt, "request": request, "function": function,
             "args": [{"json": a} for a in args], "kwargs": {k: {"json": v} for k, v in kwargs.items()},
             "headers": {"x-user": "ada"}})


def test_hello_announces_the_function_table(sc):
    hello = sc.hello
    assert hello["protocol"] == 1 and hello["concurrency"] == 8
    table = {f["name"]: f for f in hello["functions"]}
    assert {"double", "add", "pair_sum", "boom", "tail", "atail", "mapper", "areduce"} <= set(table)
    app = table["pair_sum"]
    assert app["application"] is True and app["tags"] == {"team": "demo"}
    assert app["application_retries"]["max_retries"] == 2 and app["retries"] is None
    assert (app["timeout"], app["max_concurrency"], app["min_containers"], app["max_containers"]) == (30.0, 4, 0, 3)
    assert app["description"] == "sums doubled pair" and app["parameters"] == ["x"]
    assert table["atail"]["async"] is True and table["double"]["application"] is False


def test_assignment_child_creation_wait_and_result(sc):
    assign(sc, REQ, "pair_sum", 3)
    specs = sc.expect("calls", call=REQ)["calls"]
    while len(specs) < 2:  # one batch or two: the outbox merges only what is queued together
        specs += sc.expect("calls", call=REQ)["calls"]
    created = {"calls": specs}
    ids = [c["id"] for c in created["calls"]]
    assert ids == [child_id(REQ, REQ, 0), child_id(REQ, REQ, 1)]
    assert [c["args"] for c in created["calls"]] == [[{"json": 3}], [{"json": 4}]]
    assert all(c["kind"] == "call" and c["function"] == "double" and "_fn" not in c for c in created["calls"])
    watched = sc.expect("watch", call=REQ)
    assert watched["ids"] == [ids[0]]
    sc.send({"type": "resolved", "id": ids[0], "output": {"json": 6}})
    sc.send({"type": "resolved", "id": ids[1], "output": {"json": 8}})
    add = sc.expect("calls", call=REQ)["calls"]
    assert add == [{"id": child_id(REQ, REQ, 2), "kind": "call", "function": "add",
                    "args": [{"json": 6}, {"json": 8}], "kwargs": {}}]
    sc.send({"type": "resolved", "id": add[0]["id"], "output": {"json": 14}})
    assert sc.expect("result", call=REQ) == {"type": "result", "call": REQ, "attempt": 1, "output": {"json": 14}}


def test_inputs_that_are_calls_go_in_one_batch_as_references(sc):
    call = "rprotocol-deps"
    assign(sc, call, "deps", 5)
    batch = sc.expect("calls", call=call)["calls"]
    assert [c["function"] for c in batch] == ["double", "double", "add"]
    assert batch[2]["args"] == [{"call": batch[0]["id"]}, {"call": batch[1]["id"]}]
    assert [c["id"] for c in batch] == [child_id(REQ, call, i) for i in range(3)]
    sc.expect("watch", call=call, ids=[batch[2]["id"]])
    sc.send({"type": "resolved", "id": batch[2]["id"], "output": {"json": 20}})
    assert sc.expect("result", call=call)["output"] == {"json": 20}


def test_failure_reports_type_message_traceback(sc):
    assign(sc, "c-boom", "boom", 3)
    error = sc.expect("failure", call="c-boom")["error"]
    assert (error["type"], error["module"], error["message"]) == ("ValueError", "builtins", "bad 3")
    assert 'raise ValueError(f"bad {x}")' in error["traceback"]
    assert (error["request_error"], error["retryable"], error["reason"]) == (False, True, "function_error")
    assert (error["function"], error["call"]) == ("boom", "c-boom")


def test_request_error_is_flagged_and_not_retryable(sc):
    assign(sc, "c-reject", "reject", 9)
    error = sc.expect("failure", call="c-reject")["error"]
    assert error["request_error"] is True and error["retryable"] is False and error["reason"] == "request_error"
    assert error["message"] == "request rejected: 9"


def test_child_failure_arrives_as_catchable_function_error(sc):
    assign(sc, "c-catch", "catches", 2)
    child = sc.expect("calls", call="c-catch")["calls"][0]
    sc.expect("watch", call="c-catch")
    sc.send({"type": "resolved", "id": child["id"], "error": {
        "type": "ValueError", "module": "builtins", "message": "bad 2", "traceback": "", "function": "boom",
        "call": child["id"], "request_error": False, "reason": "function_error", "retryable": True}})
    result = sc.expect("result", call="c-catch")
    assert result["output"] == {"json": "FunctionError: function 'boom' failed: ValueError: bad 2"}


@pytest.mark.parametrize("function", ["tail", "atail"])
def test_tail_call_names_the_output_source(sc, function):
    call = f"c-{function}"
    assign(sc, call, function, 4)
    created = sc.expect("calls", call=call)["calls"]
    target = "double" if function == "tail" else "adouble"
    assert created == [{"id": child_id(REQ, call, 0), "kind": "call", "function": target,
                        "args": [{"json": 4}], "kwargs": {}}]
    assert sc.expect("tail", call=call) == {"type": "tail", "call": call, "attempt": 1, "target": created[0]["id"]}


def test_map_of_two_thousand_items_is_one_message(sc):
    call = "c-map"
    assign(sc, call, "mapper", 2000)
    message = sc.expect("calls", call=call)
    assert len(message["calls"]) == 1
    spec = message["calls"][0]
    assert spec["kind"] == "map" and spec["function"] == "double" and len(spec["items"]) == 2000
    assert spec["items"][:2] == [{"json": 0}, {"json": 1}]
    sc.expect("watch", call=call, ids=[spec["id"]])
    sc.send({"type": "resolved", "id": spec["id"], "output": {"list": [{"json": 2 * i} for i in range(2000)]}})
    assert sc.expect("result", call=call)["output"] == {"json": [2 * i for i in range(2000)]}


def test_reduce_is_one_spec_with_initial(sc):
    call = "c-reduce"
    assign(sc, call, "areduce", [1, 2, 3])
    spec = sc.expect("calls", call=call)["calls"][0]
    assert spec == {"id": child_id(REQ, call, 0), "kind": "reduce", "function": "add",
                    "items": [{"json": 1}, {"json": 2}, {"json": 3}], "initial": {"json": 0}}
    sc.send({"type": "resolved", "id": spec["id"], "output": {"json": 6}})
    assert sc.expect("result", call=call)["output"] == {"json": 6}


def test_state_progress_and_metrics(sc):
    call = "c-state"
    assign(sc, call, "stateful", 41)
    set_msg = sc.expect("state_set", call=call)
    assert (set_msg["request"], set_msg["key"], set_msg["value"]) == (REQ, "seen", {"json": 41})
    sc.send({"type": "reply", "rid": set_msg["rid"], "ok": True})
    progress = sc.expect("progress", call=call)
    assert (progress["current"], progress["total"], progress["message"]) == (1.0, 2.0, "half")
    metric = sc.expect("metric", call=call)
    assert (metric["kind"], metric["name"], metric["value"]) == ("counter", "calls", 1)
    get_msg = sc.expect("state_get", call=call)
    assert get_msg["key"] == "seen"
    sc.send({"type": "reply", "rid": get_msg["rid"], "ok": True, "value": {"json": 41}})
    assert sc.expect("result", call=call)["output"] == {"json": 42}


def test_heartbeat_reports_running_calls_and_cancel(sc):
    call = "c-running"
    assign(sc, call, "pair_sum", 1)
    sc.expect("calls", call=call)
    sc.send({"type": "heartbeat", "seq": 7})
    ack = sc.expect("heartbeat_ack", seq=7)
    assert call in [r["call"] for r in ack["running"]] and ack["capacity"] == 8
    assert ack["abandoned"] == 0 and ack["loop_stalled"] < 5
    sc.send({"type": "cancel", "call": call})
    assert sc.expect("cancelled", call=call) == {"type": "cancelled", "call": call, "attempt": 1}
    sc.send({"type": "heartbeat", "seq": 8})
    ack = sc.expect("heartbeat_ack", seq=8)
    assert call not in [r["call"] for r in ack["running"]]


def test_timeout_of_an_async_call(sc):
    assign(sc, "c-slow", "slow", 1, attempt=2)
    failure = sc.expect("failure", call="c-slow")
    assert failure["attempt"] == 2 and failure["error"]["reason"] == "function_timeout"
    assert failure["error"]["retryable"] is True


def test_unknown_function(sc):
    assign(sc, "c-unknown", "nope", 1)
    error = sc.expect("failure", call="c-unknown")["error"]
    assert error["reason"] == "unknown_function" and error["retryable"] is False


def test_first_completed_wait(sc):
    call = "c-first"
    assign(sc, call, "waits_first", 0)
    batch = []
    while len(batch) < 3:
        batch += sc.expect("calls", call=call)["calls"]
    sc.expect("watch", call=call)
    sc.send({"type": "resolved", "id": batch[1]["id"], "output": {"json": 2}})
    assert sc.expect("result", call=call)["output"] == {"json": [1, 2]}


def test_concurrency_limit_queues_and_shutdown_drains():
    sidecar = Sidecar(concurrency=1)
    sidecar.handshake()
    try:
        assign(sidecar, "q1", "pair_sum", 1)
        assign(sidecar, "q2", "double", 5)
        first = sidecar.expect("calls", call="q1")["calls"]
        while len(first) < 2:
            first += sidecar.expect("calls", call="q1")["calls"]
        sidecar.send({"type": "heartbeat", "seq": 1})
        ack = sidecar.expect("heartbeat_ack", seq=1)
        assert [r["call"] for r in ack["running"]] == ["q1"] and ack["queued"] == 1
        for spec, value in zip(first, (2, 4)):
            sidecar.send({"type": "resolved", "id": spec["id"], "output": {"json": value}})
        add = sidecar.expect("calls", call="q1")["calls"][0]
        sidecar.send({"type": "shutdown", "drain": True, "deadline": 10})
        sidecar.send({"type": "resolved", "id": add["id"], "output": {"json": 6}})
        assert sidecar.expect("result", call="q1")["output"] == {"json": 6}
        # q2 never started: it is handed back for another worker
        assert sidecar.expect("failure", call="q2")["error"]["reason"] == "worker_shutdown"
        assert sidecar.expect("bye") == {"type": "bye", "unfinished": []}
        assert sidecar.proc.wait(timeout=10) == 0
    finally:
        sidecar.close()


def test_load_failure_is_fatal():
    sidecar = Sidecar(module="apps.does_not_exist")
    try:
        fatal = sidecar.expect("fatal")
        assert fatal["error"]["type"] == "ModuleNotFoundError"
        assert sidecar.proc.wait(timeout=10) == 3
    finally:
        sidecar.close()


def test_sigterm_drains_like_shutdown():
    import signal

    sidecar = Sidecar(concurrency=2)
    sidecar.handshake()
    try:
        assign(sidecar, "t1", "pair_sum", 1)
        # The two doubles may come in one `calls` batch or two (the outbox merges what is queued).
        first = sidecar.expect("calls", call="t1")["calls"]
        while len(first) < 2:
            first += sidecar.expect("calls", call="t1")["calls"]
        sidecar.proc.send_signal(signal.SIGTERM)
        for spec, value in zip(first, (2, 4)):
            sidecar.send({"type": "resolved", "id": spec["id"], "output": {"json": value}})
        add = sidecar.expect("calls", call="t1")["calls"][0]
        sidecar.send({"type": "resolved", "id": add["id"], "output": {"json": 6}})
        assert sidecar.expect("result", call="t1")["output"] == {"json": 6}
        assert sidecar.expect("bye") == {"type": "bye", "unfinished": []}
        assert sidecar.proc.wait(timeout=10) == 0
    finally:
        sidecar.close()


def test_blocked_event_loop_shows_in_heartbeat():
    sidecar = Sidecar(concurrency=2)
    sidecar.handshake()
    try:
        assign(sidecar, "b1", "blocks_loop", 0)
        sidecar.expect("calls", call="b1")  # the async function now blocks the loop in a sync wait
        seq, stalled, deadline = 0, 0.0, time.monotonic() + 10
        while stalled <= 0 and time.monotonic() < deadline:  # poll for the condition, with a timeout
            seq += 1
            sidecar.send({"type": "heartbeat", "seq": seq})
            stalled = sidecar.expect("heartbeat_ack", seq=seq)["loop_stalled"]
            time.sleep(0.05)
        assert stalled > 0
    finally:
        sidecar.close()


def test_request_headers_reach_request_context(sc):
    assign(sc, "c-who", "who", 0)
    assert sc.expect("result", call="c-who")["output"] == {"json": "ada"}


@pytest.mark.parametrize(
    "function,assign_timeout,sleep,outcome",
    [
        # the Application raised the decorator's 1 s: the call is not cut short
        ("nap_timeout_1", 4, 2, "result"),
        # the Application lowered the decorator's 10 s: the worker enforces 1 s
        ("nap_timeout_10", 1, 3, "failure"),
    ],
)
def test_timeout_of_assign_overrides_the_decorator(function, assign_timeout, sleep, outcome):
    sidecar = Sidecar(concurrency=1)  # its own worker: a timed-out sync attempt stays abandoned a while
    sidecar.handshake()
    try:
        sidecar.send({"type": "assign", "call": "c-nap", "attempt": 1, "request": REQ, "function": function,
                      "args": [{"json": sleep}], "kwargs": {}, "headers": {}, "timeout": assign_timeout})
        started = time.monotonic()
        final = sidecar.expect(outcome, call="c-nap", timeout=10)
        if outcome == "result":
            assert final["output"] == {"json": sleep} and time.monotonic() - started >= sleep - 0.1
        else:
            assert final["error"]["reason"] == "function_timeout" and final["error"]["retryable"] is True
            assert time.monotonic() - started < sleep
            assert "1 seconds" in final["error"]["message"]
    finally:
        sidecar.close()


def test_invalid_messages_are_logged_and_answered_when_they_name_their_target(sc):
    # an assign with a bad value form ends its attempt with a failure naming the field and rule
    sc.send({"type": "assign", "call": "c-bad", "attempt": 1, "request": REQ, "function": "double",
             "args": [{"call": "c-other"}], "kwargs": {}}, check=False)
    error = sc.expect("failure", call="c-bad")["error"]
    assert (error["type"], error["reason"], error["retryable"]) == ("ProtocolError", "internal", False)
    assert "assign.args[0]: must be a value form ({json}|{pickle}|{list}|{raw})" in error["message"]
    # one that names nothing is ignored, and the worker carries on
    sc.send({"type": "cancel", "call": 42}, check=False)
    sc.send({"type": "mystery", "seq": 1}, check=False)
    sc.send({"type": "heartbeat", "seq": 99})
    assert "c-bad" not in [r["call"] for r in sc.expect("heartbeat_ack", seq=99)["running"]]
