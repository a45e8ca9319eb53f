"""Attempts of the local runner's calls: start (after any delay), run, time out, retry.

Sync calls run on pool threads, async ones on their thread's own event loop. A timed-out
attempt is cancelled (async) or left to finish unseen (sync); either way its late outcome is
dropped. Retries follow the function's settings, else the application's.
"""

import threading
from typing import Any

from .._core import context, execute, values
from .._core.pool import ThreadPool, Timers
from .graph import Call, CallGraph
from .loops import cancel_leftovers, thread_loop


class Attempts:
    def __init__(self, backend: context.Backend, app: Any, graph: CallGraph, lock: threading.RLock,
                 pool: ThreadPool, timers: Timers, started: dict[str, int]) -> None:
        self.backend = backend
        self.app = app
        self.graph = graph
        self.lock = lock
        self.pool = pool
        self.timers = timers
        self.started = started  # function name -> attempts started

    def begin(self, call: Call) -> None:
        """A call that became ready: its first attempt, after the spec's delay."""
        delay = call.spec.get("delay") or 0
        if delay > 0:
            self.timers.after(delay, lambda: self.start(call))
        else:
            self.start(call)

    def _retries(self, call: Call):
        return call.fn._function_config.retries or self.app._application_config.retries

    def start(self, call: Call) -> None:
        with self.lock:
            if call.outcome is not None:
                return
            call.attempt += 1
            token = object()
            call.token = token
            self.started[call.fn._name] = self.started.get(call.fn._name, 0) + 1
            timeout = call.fn._function_config.timeout
        self.timers.after(timeout, lambda: self._on_timeout(call, token, timeout))
        self.pool.submit(lambda: self._run(call, token))

    def _run(self, call: Call, token: object) -> None:
        spec, fn = call.spec, call.fn
        args, kwargs = self._resolve_inputs(spec)
        request_id = self.graph.request_id
        ctx = context.CallContext(request_id=request_id, call_id=call.id, attempt=call.attempt,
                                  function=fn, backend=self.backend)
        boundary = call.id == request_id
        if fn._is_async:
            loop = thread_loop()
            try:
                task = loop.create_task(execute.run_async(ctx, fn, args, kwargs, boundary))
                call.cancel = lambda: loop.call_soon_threadsafe(task.cancel)
                outcome = loop.run_until_complete(task)
            finally:
                call.cancel = None
                cancel_leftovers(loop)
        else:
            outcome = execute.run_sync(ctx, fn, args, kwargs, boundary)
        self._done(call, token, outcome)

    def _resolve_inputs(self, spec: dict) -> tuple[list, dict]:
        calls = self.graph.calls

        def resolve(form):
            ref = values.ref_of(form)
            return calls[ref].outcome[1] if ref else form

        with self.lock:
            return [resolve(f) for f in spec["args"]], {k: resolve(f) for k, f in spec["kwargs"].items()}

    def _done(self, call: Call, token: object, outcome: tuple) -> None:
        finished: list = []
        with self.lock:
            if call.token is not token or call.outcome is not None:
                return  # a timed-out attempt finishing late: its result is ignored
            call.token = None
            kind, payload = outcome
            if kind == "ok":
                finished.append((call.id, outcome))
            elif kind == "tail":
                self.graph.delegate(call, {"call": payload}, finished)
            elif not self._maybe_retry(call, payload):
                finished.append((call.id, outcome))
        self.graph.drain([], finished)

    def _on_timeout(self, call: Call, token: object, timeout: float) -> None:
        finished: list = []
        with self.lock:
            if call.token is not token or call.outcome is not None:
                return
            call.token = None
            if call.cancel is not None:
                call.cancel()
            info = execute.timeout_info(call.fn._name, call.id, timeout, call.attempt)
            if not self._maybe_retry(call, info):
                finished.append((call.id, ("error", info)))
        self.graph.drain([], finished)

    def _maybe_retry(self, call: Call, info: dict) -> bool:
        retries = self._retries(call)
        if not info.get("retryable", True) or call.attempt > retries.max_retries:
            return False
        self.timers.after(retries.delay_before(call.attempt), lambda: self.start(call))
        return True
