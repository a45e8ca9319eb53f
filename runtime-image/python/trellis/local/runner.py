"""Runs one request's call graph in-process with the cluster's semantics.

Calls run on threads (async ones on a fresh event loop each, as if in their own
container), independent calls in parallel. The graph rules (dependencies, map/reduce,
delegation, durable ids) are in graph.py, attempts (delays, timeouts, retries) in
attempts.py; this module is the runner running calls talk to (the Backend).
"""

import threading
from datetime import datetime, timezone
from typing import Any

from .._core import context, values
from .._core.board import OutcomeBoard
from .._core.ids import new_request_id
from .._core.pool import ThreadPool, Timers
from ..interface.exceptions import SDKUsageError
from ..interface.futures import RETURN_WHEN
from .attempts import Attempts
from .graph import CallGraph
from .loops import close_thread_loop
from .request import LocalRequest, print_failure

__all__ = ["LocalRequest", "LocalRunner", "run_local"]

_ALL = RETURN_WHEN.ALL_COMPLETED


class LocalRunner(context.Backend):
    def __init__(self, app: Any, request_id: str | None = None) -> None:
        self.app = app
        self.request_id = request_id or new_request_id()
        self.board = OutcomeBoard()
        self._lock = threading.RLock()
        self._pool = ThreadPool(f"trellis-{self.request_id}", on_thread_exit=close_thread_loop)
        self._timers = Timers(f"trellis-timers-{self.request_id}")
        self.state: dict[str, dict] = {}
        self.progress_updates: list[dict] = []
        self.metrics: dict[str, list] = {"counters": {}, "timers": []}
        self.attempts: dict[str, int] = {}  # function name -> attempts started
        self._graph = CallGraph(self.request_id, self.board, self._lock, start=lambda call: self._runs.begin(call))
        self._calls = self._graph.calls
        self._runs = Attempts(self, app, self._graph, self._lock, self._pool, self._timers, self.attempts)

    # -- starting and finishing the request -----------------------------------------
    def run(self, args: list, kwargs: dict) -> LocalRequest:
        names, _ = _arg_names(self.app, args)
        sig = self.app._signature()
        if sig is not None:
            try:
                sig.bind(*args, **kwargs)
            except TypeError as e:
                raise SDKUsageError(f"request input for application '{self.app._name}': {e}") from None
        spec = {
            "id": self.request_id,
            "kind": "call",
            "function": self.app._name,
            "args": [values.encode_app(a, f"request input '{names[i]}'") for i, a in enumerate(args)],
            "kwargs": {k: values.encode_app(v, f"request input '{k}'") for k, v in kwargs.items()},
            "_fn": self.app,
        }
        self._graph.submit([spec])
        try:
            outcome = self.board.wait([self.request_id], None, _ALL)[self.request_id]
        finally:
            self._timers.close()
        if outcome[0] == "error":
            print_failure(outcome[1], _describe_root(self.app, spec) if outcome[1].get("call") == self.request_id
                          else None)
        return LocalRequest(self.request_id, outcome, self.app, self)

    # -- Backend (what running calls use) ------------------------------------------
    def create_calls(self, ctx, specs: list[dict]) -> None:
        self._graph.submit(specs)

    def wait(self, ctx, ids, timeout, return_when) -> dict:
        return self.board.wait(ids, timeout, return_when)

    def wait_async(self, ctx, call_id: str):
        return self.board.wait_async(call_id)

    def state_get(self, ctx, key: str):
        with self._lock:
            return self.state.get(key)

    def state_set(self, ctx, key: str, value: dict) -> None:
        with self._lock:
            self.state[key] = value

    def progress(self, ctx, current, total, message, attributes) -> None:
        with self._lock:
            self.progress_updates.append(
                {"call": ctx.call_id, "function": ctx.function._name, "current": current,
                 "total": total, "message": message, "attributes": attributes}
            )
        step, of = _maybe_int(current), _maybe_int(total)
        # The line Tensorlake's local mode prints for a progress update.
        _print_line("Progress Update: " + str({
            "request_id": ctx.request_id, "function_name": ctx.function._name,
            "function_run_id": ctx.call_id, "allocation_id": ctx.call_id,
            "message": message if message is not None else f"{ctx.function._name}: executing step {step} of {of}",
            "step": step, "total": of, "attributes": attributes, "created_at": _event_time(),
        }))

    def metric(self, ctx, kind: str, name: str, value) -> None:
        with self._lock:
            if kind == "counter":
                counters = self.metrics["counters"]
                counters[name] = counters.get(name, 0) + value
            else:
                self.metrics["timers"].append((name, value))
        # The lines Tensorlake's local mode prints for metrics.
        event = {"request_id": ctx.request_id, "function_name": ctx.function._name}
        if kind == "counter":
            _print_line("Counter Incremented: " + str(dict(event, counter_name=name, counter_inc=value)))
        else:
            _print_line("Timer Recorded: " + str(dict(event, timer_name=name, timer_value=value)))


def _describe_root(app: Any, spec: dict) -> str | None:
    """The root call as Tensorlake shows it in failure messages; None if its inputs cannot be read."""
    from ..interface.futures import FunctionCallFuture

    def value(form):
        form = getattr(form, "form", form)  # an input already converted at the boundary
        if isinstance(form, dict) and len(form) == 1 and "json" in form:
            return form["json"]
        return values.decode(form, "request input")

    try:
        args = [value(f) for f in spec["args"]]
        kwargs = {k: value(f) for k, f in spec["kwargs"].items()}
        return str(FunctionCallFuture(app, args, kwargs))
    except Exception:  # noqa: BLE001 - only the message is less detailed
        return None


def _maybe_int(value: float):
    return int(value) if float(value).is_integer() else value


def _event_time() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _print_line(line: str) -> None:
    try:
        print(line, flush=True)
    except Exception:  # best effort, like logging: a closed stdout never fails the function
        pass


def _arg_names(fn: Any, args: list) -> tuple[list[str], dict]:
    from .._core.graph import _param_names

    return _param_names(fn, args, {})


def run_local(app: Any, args: list, kwargs: dict) -> LocalRequest:
    return LocalRunner(app).run(args, kwargs)
