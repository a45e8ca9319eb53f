"""The attempts a worker runs: admission up to `concurrency` (the rest queue), timeouts,
cancellation, and the one final message of each attempt (PROTOCOL.md §5, §9-§10).

Sync attempts run on pool threads and cannot be stopped: a timed-out or cancelled one is
abandoned (its late outcome is dropped) and counted until its thread returns. Async attempts
run on the shared event loop and are cancelled.
"""

import asyncio
import threading
import time
from typing import Any, Callable

from .._core import context, execute
from .._core.pool import ThreadPool, Timers
from ..protocol import runtime_error
from .calls import PodBackend
from .log import log


class Attempt:
    __slots__ = ("call", "attempt", "function", "started", "done", "task", "sync", "watched", "ctx")

    def __init__(self, call: str, attempt: int, function: Any, sync: bool) -> None:
        self.call = call
        self.attempt = attempt
        self.function = function
        self.started = time.monotonic()
        self.done = False
        self.task = None
        self.sync = sync
        self.watched: set[str] = set()


class Attempts:
    def __init__(self, functions: dict, concurrency: int, module: str, backend: PodBackend,
                 loop: asyncio.AbstractEventLoop, send: Callable[..., None], lock: threading.RLock) -> None:
        self.functions = functions
        self.concurrency = concurrency
        self.module = module
        self.backend = backend
        self.loop = loop
        self.send = send
        self.lock = lock
        self.running: dict[tuple[str, int], Attempt] = {}
        self.queued: list[dict] = []
        self.abandoned = 0
        self.draining = False
        self._pool = ThreadPool("trellis-call", idle_seconds=60.0)
        self._timers = Timers("trellis-timers")

    def assign(self, msg: dict) -> None:
        fn = self.functions.get(msg["function"])
        call, attempt = msg["call"], int(msg["attempt"])
        if fn is None:
            info = runtime_error("SDKUsageError", f"function {msg['function']!r} is not defined in {self.module}",
                                 msg["function"], call, reason="unknown_function", retryable=False)
            self.send({"type": "failure", "call": call, "attempt": attempt, "error": info})
            return
        with self.lock:
            if self.has(call, attempt):
                log(f"ignoring a repeated assign of {call} attempt {attempt}")
                return
            if self.draining:
                info = runtime_error("InternalError", "the worker is shutting down", fn._name, call,
                                     reason="worker_shutdown", retryable=True)
                self.send({"type": "failure", "call": call, "attempt": attempt, "error": info})
                return
            if len(self.running) >= self.concurrency:
                self.queued.append(msg)
                return
            self._start(msg, fn)

    def has(self, call: str, attempt: int) -> bool:
        """Whether this attempt is running or queued (lock held)."""
        return (call, attempt) in self.running or any(
            m["call"] == call and int(m["attempt"]) == attempt for m in self.queued
        )

    def _start(self, msg: dict, fn: Any) -> None:
        run = Attempt(msg["call"], int(msg["attempt"]), fn, sync=not fn._is_async)
        self.running[(run.call, run.attempt)] = run
        ctx = context.CallContext(request_id=msg["request"], call_id=run.call, attempt=run.attempt,
                                  function=fn, backend=self.backend, headers=msg.get("headers") or {})
        ctx.worker_attempt = run
        run.ctx = ctx
        args, kwargs = msg["args"], msg["kwargs"]
        boundary = run.call == msg["request"]
        # The operator resolves the effective timeout (call > Application spec > decorator).
        timeout = msg.get("timeout") or fn._function_config.timeout
        self._timers.after(timeout, lambda: self._on_timeout(run, timeout))
        if fn._is_async:
            async def go() -> None:
                run.task = asyncio.current_task()
                if run.done:
                    return
                self._finish(run, await execute.run_async(ctx, fn, args, kwargs, boundary))

            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(go()))
        else:
            self._pool.submit(lambda: self._finish(run, execute.run_sync(ctx, fn, args, kwargs, boundary)))

    def _end(self, run: Attempt) -> None:
        """Bookkeeping when an attempt is over (lock held); starts a queued call."""
        run.done = True
        self.running.pop((run.call, run.attempt), None)
        self.backend.forget(run)
        while self.queued and len(self.running) < self.concurrency and not self.draining:
            nxt = self.queued.pop(0)
            self._start(nxt, self.functions[nxt["function"]])

    def _finish(self, run: Attempt, outcome: tuple) -> None:
        with self.lock:
            if run.done:
                if run.sync:
                    self.abandoned = max(0, self.abandoned - 1)
                return
            self._end(run)
            kind, payload = outcome
            base = {"call": run.call, "attempt": run.attempt}
            if kind == "ok":
                msg = {"type": "result", **base, "output": payload}
            elif kind == "tail":
                msg = {"type": "tail", **base, "target": payload}
            else:
                msg = {"type": "failure", **base, "error": payload}
            if not run.sync:
                self.send(msg)  # the event loop's thread never writes to the socket itself
                return
        # A pool thread whose call is over writes the final message itself, outside the lock.
        self.send(msg, True)

    def _stop(self, run: Attempt) -> None:
        """Ends an attempt that is still running: cancel it, or abandon its thread (lock held)."""
        self._end(run)
        if run.sync:
            self.abandoned += 1
        elif run.task is not None:
            self.loop.call_soon_threadsafe(run.task.cancel)

    def _on_timeout(self, run: Attempt, timeout: float) -> None:
        with self.lock:
            if run.done:
                return
            self._stop(run)
            info = execute.timeout_info(run.function._name, run.call, timeout, run.attempt)
            self.send({"type": "failure", "call": run.call, "attempt": run.attempt, "error": info})

    def cancel(self, call: str) -> None:
        with self.lock:
            for run in [r for r in self.running.values() if r.call == call]:
                self._stop(run)
                self.send({"type": "cancelled", "call": run.call, "attempt": run.attempt})
            for msg in [m for m in self.queued if m["call"] == call]:
                self.queued.remove(msg)
                self.send({"type": "cancelled", "call": call, "attempt": int(msg["attempt"])})

    def stop_taking_work(self, drain: bool) -> None:
        """Shutdown: queued attempts go back to the sidecar; without drain, running ones are cancelled."""
        with self.lock:
            self.draining = True
            for msg in self.queued:
                info = runtime_error("InternalError", "the worker is shutting down", msg["function"], msg["call"],
                                     reason="worker_shutdown", retryable=True)
                self.send({"type": "failure", "call": msg["call"], "attempt": int(msg["attempt"]), "error": info})
            self.queued.clear()
            if not drain:
                for run in list(self.running.values()):
                    self._stop(run)
                    self.send({"type": "cancelled", "call": run.call, "attempt": run.attempt})

    def snapshot(self, now: float) -> tuple[list[dict], int, int]:
        """Running attempts, queued count and abandoned count, for heartbeat_ack."""
        with self.lock:
            running = [
                {"call": a.call, "attempt": a.attempt, "function": a.function._name,
                 "seconds": round(now - a.started, 3)}
                for a in self.running.values()
            ]
            return running, len(self.queued), self.abandoned
