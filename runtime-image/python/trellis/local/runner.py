"""Runs one request's call graph in-process with the cluster's semantics.

Calls run on threads (async ones on a fresh event loop each, as if in their own
container), independent calls in parallel. Calls wait for their {call} inputs; a
failed input fails the call. Tail calls delegate; chains of them resolve in a loop,
never by recursion. Retries and timeouts follow the function's settings (or the
application's retries). Child ids are durable: a retried attempt that creates the
same children re-attaches to them instead of running them again.
"""

import asyncio
import sys
import threading
from typing import Any

from ..interface.exceptions import RequestError, RequestFailed, SDKUsageError
from ..interface.request import Request
from .._core import context, execute, values
from .._core.board import OutcomeBoard
from .._core.ids import child_id, new_request_id
from .._core.pool import ThreadPool, Timers


class _Call:
    __slots__ = (
        "id", "kind", "fn", "spec", "pending", "dependents", "delegators",
        "outcome", "attempt", "token", "cancel", "items", "started",
    )

    def __init__(self, spec: dict) -> None:
        self.id = spec["id"]
        self.kind = spec["kind"]
        self.fn = spec["_fn"]
        self.spec = spec
        self.pending = 0
        self.dependents: list[str] = []
        self.delegators: list[str] = []
        self.outcome = None
        self.attempt = 0
        self.token = None
        self.cancel = None
        self.items: list[str] | None = None  # map: item call ids once expanded
        self.started = False


class LocalRequest(Request):
    def __init__(self, id: str, outcome: tuple, app: Any, runner: "LocalRunner") -> None:
        super().__init__(id)
        self._outcome = outcome
        self._app = app
        self.progress_updates = runner.progress_updates
        self.metrics = runner.metrics
        self.state = runner.state

    def output(self) -> Any:
        kind, payload = self._outcome
        if kind == "error":
            if payload.get("request_error"):
                raise RequestError(payload["message"])
            raise RequestFailed(payload.get("reason", "function_error"))
        value = values.decode(payload, "request output")
        hint = execute._hints(self._app).get("return")
        return values.apply_hint(value, hint) if "json" in payload else value


class LocalRunner(context.Backend):
    def __init__(self, app: Any, request_id: str | None = None) -> None:
        self.app = app
        self.request_id = request_id or new_request_id()
        self.board = OutcomeBoard()
        self._lock = threading.RLock()
        self._calls: dict[str, _Call] = {}
        self._pool = ThreadPool(f"trellis-{self.request_id}", on_thread_exit=_close_thread_loop)
        self._timers = Timers(f"trellis-timers-{self.request_id}")
        self.state: dict[str, dict] = {}
        self.progress_updates: list[dict] = []
        self.metrics: dict[str, list] = {"counters": {}, "timers": []}
        self.attempts: dict[str, int] = {}  # function name -> attempts started

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
        self._submit([spec])
        try:
            outcome = self.board.wait([self.request_id], None, _ALL)[self.request_id]
        finally:
            self._timers.close()
        if outcome[0] == "error":
            _print_failure(outcome[1])
        return LocalRequest(self.request_id, outcome, self.app, self)

    # -- Backend (what running calls use) ------------------------------------------
    def create_calls(self, ctx, specs: list[dict]) -> None:
        self._submit(specs)

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

    def metric(self, ctx, kind: str, name: str, value) -> None:
        with self._lock:
            if kind == "counter":
                counters = self.metrics["counters"]
                counters[name] = counters.get(name, 0) + value
            else:
                self.metrics["timers"].append((name, value))

    # -- the graph -----------------------------------------------------------------
    def _submit(self, specs: list[dict]) -> None:
        ready: list[_Call] = []
        finished: list[tuple] = []
        with self._lock:
            for spec in specs:
                if spec["id"] in self._calls:
                    continue  # durable id seen before: re-attach, never run twice
                self._add(spec, ready, finished)
        self._drain(ready, finished)

    def _add(self, spec: dict, ready: list, finished: list) -> _Call:
        call = _Call(spec)
        self._calls[call.id] = call
        if call.kind == "call":
            forms = list(spec["args"]) + list(spec["kwargs"].values())
            deps = [values.ref_of(f) for f in forms if values.ref_of(f)]
        elif isinstance(spec["items"], list):
            deps = []
            self._expand(call, spec["items"], ready, finished)
            if call.outcome is not None or call.kind == "reduce":
                return call
            deps = list(call.items)
        else:
            deps = [values.ref_of(spec["items"])]
            if spec.get("initial") is not None and values.ref_of(spec["initial"]):
                deps.append(values.ref_of(spec["initial"]))
        self._depend(call, deps, ready, finished)
        return call

    def _depend(self, call: _Call, deps: list[str], ready: list, finished: list) -> None:
        for dep_id in dict.fromkeys(deps):
            dep = self._calls.get(dep_id)
            if dep is None:
                finished.append((call.id, ("error", _internal(call, f"input call {dep_id} does not exist"))))
                return
            if dep.outcome is None:
                call.pending += 1
                dep.dependents.append(call.id)
            elif dep.outcome[0] == "error":
                finished.append((call.id, ("error", _caused(dep.outcome[1], dep_id))))
                return
        if call.pending == 0:
            ready.append(call)

    def _expand(self, call: _Call, items: list[dict], ready: list, finished: list) -> None:
        """Map: one child call per item. Reduce: a chain of steps; the reduce delegates to the last."""
        fn, spec = call.fn, call.spec
        if call.kind == "map":
            call.items = []
            for i, item in enumerate(items):
                cid = child_id(self.request_id, call.id, i)
                call.items.append(cid)
                if cid not in self._calls:
                    self._add({"id": cid, "kind": "call", "function": spec["function"], "args": [item],
                               "kwargs": {}, "_fn": fn}, ready, finished)
            if not items:
                finished.append((call.id, ("ok", {"list": []})))
            return
        acc = spec.get("initial")
        rest = list(items)
        if acc is None:
            if not rest:
                finished.append((call.id, ("error", _usage(call, "reduce() of an empty list with no initial value"))))
                return
            acc = rest.pop(0)
        for k, item in enumerate(rest):
            cid = child_id(self.request_id, call.id, k)
            if cid not in self._calls:
                self._add({"id": cid, "kind": "call", "function": spec["function"], "args": [acc, item],
                           "kwargs": {}, "_fn": fn}, ready, finished)
            acc = {"call": cid}
        self._delegate(call, acc, finished)

    def _delegate(self, call: _Call, form: dict, finished: list) -> None:
        target_id = values.ref_of(form)
        if target_id is None:
            finished.append((call.id, ("ok", form)))
            return
        target = self._calls.get(target_id)
        if target is None:
            finished.append((call.id, ("error", _internal(call, f"tail call target {target_id} does not exist"))))
        elif target.outcome is not None:
            finished.append((call.id, target.outcome))
        else:
            target.delegators.append(call.id)

    def _drain(self, ready: list, finished: list) -> None:
        """Finishes calls and starts ready ones, iteratively (deep chains never recurse)."""
        while ready or finished:
            with self._lock:
                while finished:
                    call_id, outcome = finished.pop()
                    call = self._calls[call_id]
                    if call.outcome is not None:
                        continue
                    call.outcome = outcome
                    call.token = None
                    self.board.resolve(call_id, outcome)
                    for d in call.delegators:
                        finished.append((d, outcome))
                    call.delegators = []
                    for dep_id in call.dependents:
                        dep = self._calls[dep_id]
                        if dep.outcome is not None:
                            continue
                        if outcome[0] == "error":
                            finished.append((dep_id, ("error", _caused(outcome[1], call_id))))
                        else:
                            dep.pending -= 1
                            if dep.pending == 0:
                                ready.append(dep)
                    call.dependents = []
                starting = []
                while ready:
                    call = ready.pop()
                    if call.outcome is not None or call.started:
                        continue
                    if call.kind == "call":
                        call.started = True
                        starting.append(call)
                    elif call.kind == "map" and call.items is not None:
                        outs = [self._calls[i].outcome[1] for i in call.items]
                        finished.append((call.id, ("ok", {"list": outs})))
                    else:
                        self._expand_from_ref(call, ready, finished)
            for call in starting:
                delay = call.spec.get("delay") or 0
                if delay > 0:
                    self._timers.after(delay, lambda c=call: self._start_attempt(c))
                else:
                    self._start_attempt(call)

    def _expand_from_ref(self, call: _Call, ready: list, finished: list) -> None:
        src = self._calls[values.ref_of(call.spec["items"])].outcome[1]
        # Only what the operator can split without unpickling: a list form or a JSON array.
        if "list" in src:
            items = list(src["list"])
        elif "json" in src and isinstance(src["json"], list):
            items = [{"json": v} for v in src["json"]]
        else:
            err = SDKUsageError(f"{call.spec['function']}.{call.kind}() items must be a list, "
                                f"got a non-list output of call {values.ref_of(call.spec['items'])}")
            finished.append((call.id, ("error", execute.error_info(err, call.spec["function"], call.id))))
            return
        if call.kind == "reduce" and call.spec.get("initial") is not None:
            init_ref = values.ref_of(call.spec["initial"])
            if init_ref:
                call.spec = dict(call.spec, initial=self._calls[init_ref].outcome[1])
        self._expand(call, items, ready, finished)
        if call.kind == "map" and call.items:
            self._depend(call, call.items, ready, finished)

    # -- attempts ------------------------------------------------------------------
    def _retries(self, call: _Call):
        return call.fn._function_config.retries or self.app._application_config.retries

    def _start_attempt(self, call: _Call) -> None:
        with self._lock:
            if call.outcome is not None:
                return
            call.attempt += 1
            token = object()
            call.token = token
            self.attempts[call.fn._name] = self.attempts.get(call.fn._name, 0) + 1
            timeout = call.fn._function_config.timeout
        self._timers.after(timeout, lambda: self._on_timeout(call, token, timeout))
        self._pool.submit(lambda: self._run_attempt(call, token))

    def _run_attempt(self, call: _Call, token: object) -> None:
        spec, fn = call.spec, call.fn
        args, kwargs = self._resolve_inputs(spec)
        ctx = context.CallContext(request_id=self.request_id, call_id=call.id, attempt=call.attempt,
                                  function=fn, backend=self)
        boundary = call.id == self.request_id
        if fn._is_async:
            loop = _thread_loop()
            try:
                task = loop.create_task(execute.run_async(ctx, fn, args, kwargs, boundary))
                call.cancel = lambda: loop.call_soon_threadsafe(task.cancel)
                outcome = loop.run_until_complete(task)
            finally:
                call.cancel = None
                _cancel_leftovers(loop)
        else:
            outcome = execute.run_sync(ctx, fn, args, kwargs, boundary)
        self._attempt_done(call, token, outcome)

    def _resolve_inputs(self, spec: dict) -> tuple[list, dict]:
        def resolve(form):
            ref = values.ref_of(form)
            return self._calls[ref].outcome[1] if ref else form

        with self._lock:
            return [resolve(f) for f in spec["args"]], {k: resolve(f) for k, f in spec["kwargs"].items()}

    def _attempt_done(self, call: _Call, token: object, outcome: tuple) -> None:
        finished: list = []
        with self._lock:
            if call.token is not token or call.outcome is not None:
                return  # a timed-out attempt finishing late: its result is ignored
            call.token = None
            kind, payload = outcome
            if kind == "ok":
                finished.append((call.id, outcome))
            elif kind == "tail":
                self._delegate(call, {"call": payload}, finished)
            elif not self._maybe_retry(call, payload):
                finished.append((call.id, outcome))
        self._drain([], finished)

    def _on_timeout(self, call: _Call, token: object, timeout: float) -> None:
        finished: list = []
        with self._lock:
            if call.token is not token or call.outcome is not None:
                return
            call.token = None
            if call.cancel is not None:
                call.cancel()
            info = execute.timeout_info(call.fn._name, call.id, timeout, call.attempt)
            if not self._maybe_retry(call, info):
                finished.append((call.id, ("error", info)))
        self._drain([], finished)

    def _maybe_retry(self, call: _Call, info: dict) -> bool:
        retries = self._retries(call)
        if not info.get("retryable", True) or call.attempt > retries.max_retries:
            return False
        self._timers.after(retries.delay_before(call.attempt), lambda: self._start_attempt(call))
        return True


from ..interface.futures import RETURN_WHEN

_ALL = RETURN_WHEN.ALL_COMPLETED


_local = threading.local()


def _thread_loop() -> asyncio.AbstractEventLoop:
    """Each pool thread keeps one event loop; an async call owns it while it runs."""
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop


def _close_thread_loop() -> None:
    loop = getattr(_local, "loop", None)
    if loop is not None and not loop.is_closed():
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Tasks a call left running end with it, as when its container would be recycled."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _arg_names(fn: Any, args: list) -> tuple[list[str], dict]:
    from .._core.graph import _param_names

    return _param_names(fn, args, {})


def _caused(info: dict, cause: str) -> dict:
    out = dict(info)
    out.setdefault("cause", cause)
    return out


def _internal(call: _Call, message: str) -> dict:
    return {"type": "InternalError", "module": "trellis", "message": message, "traceback": "",
            "function": call.spec["function"], "call": call.id, "request_error": False,
            "reason": "internal", "retryable": False}


def _usage(call: _Call, message: str) -> dict:
    return dict(_internal(call, message), type="SDKUsageError", reason="function_error")


def _print_failure(info: dict) -> None:
    if info.get("request_error"):
        return
    print(f"Request failed: function '{info.get('function')}' {info.get('type')}: {info.get('message')}",
          file=sys.stderr)
    if info.get("traceback"):
        print(info["traceback"], file=sys.stderr, end="")


def run_local(app: Any, args: list, kwargs: dict) -> LocalRequest:
    return LocalRunner(app).run(args, kwargs)
