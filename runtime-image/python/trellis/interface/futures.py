"""Futures: handles on calls of functions, maps and reduces.

A Future does nothing until it is started by `run()`, `run_later()`, `result()`,
`await`, `Future.wait`, by being passed as an argument of a started call, or by
being returned from a function (a tail call).
"""

import asyncio
import math
from collections.abc import Coroutine, Iterable
from enum import Enum
from typing import Any

from . import _hooks
from .exceptions import InternalError, SDKUsageError, TensorlakeError


class RETURN_WHEN(Enum):
    """When `Future.wait` returns."""

    FIRST_COMPLETED = 0
    FIRST_FAILURE = 1
    ALL_COMPLETED = 2


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _check_seconds(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise SDKUsageError(f"{name} must be a non-negative finite number.")


class Future:
    """A computation in an application; see the module docstring for when it starts."""

    def __init__(self) -> None:
        # Durable call id, given by the runtime when the future starts.
        self._id: str | None = None
        self._started: bool = False
        self._start_delay: float | None = None
        self._coroutine: Coroutine | None = None
        self._result: Any = _MISSING
        self._exception: TensorlakeError | None = None

    # -- user API -----------------------------------------------------------------
    def run(self) -> "Future":
        """Starts the future as soon as possible and returns it."""
        if self._started:
            raise SDKUsageError(f"Attempt to run Future that is already started: {self}")
        _hooks.runtime().run_future(self)
        return self

    def run_later(self, start_delay: float) -> "Future":
        """Starts the future after `start_delay` seconds and returns it."""
        _check_seconds("Future delay", start_delay)
        if not self._started:
            self._start_delay = float(start_delay)
        return self.run()

    def result(self, timeout: float | None = None) -> Any:
        """Blocks until the future is done and returns its value or raises its error.

        Raises FunctionError (or the child's RequestError) if the call failed and
        TimeoutError if `timeout` seconds pass first; the future is then done, with
        that TimeoutError as its exception (as in Tensorlake).
        """
        if timeout is not None:
            _check_seconds("Future.result timeout", timeout)
        if self.done():
            return self._done_result()
        if not self._started:
            self.run()
        _hooks.runtime().wait_futures([self], timeout, RETURN_WHEN.ALL_COMPLETED)
        if not self.done():
            from .exceptions import TimeoutError

            self._set_exception(TimeoutError())
        return self._done_result()

    def done(self) -> bool:
        return self._result is not _MISSING or self._exception is not None

    @property
    def exception(self) -> TensorlakeError | None:
        """The error of a failed future; None while running or after success."""
        return self._exception

    def coroutine(self) -> Coroutine:
        """A coroutine standing for this future (for async functions)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise SDKUsageError(
                "Future.coroutine() can only be called from an async function. "
                "Use Future.result() to get the result in a sync function."
            ) from None
        if self._started:
            raise SDKUsageError(f"Future.coroutine() cannot be called on a Future that is already running: {self}")
        if self._coroutine is not None:
            return self._coroutine
        return _wrap_future_into_coroutine(self)

    def __await__(self):
        if self.done():
            return self._done_result()
        if not self._started:
            self.run()
        yield from _hooks.runtime().await_future(self)
        return self._done_result()

    @classmethod
    def wait(
        cls,
        futures: Iterable["Future"],
        timeout: float | None = None,
        return_when: RETURN_WHEN = RETURN_WHEN.ALL_COMPLETED,
    ) -> tuple[list["Future"], list["Future"]]:
        """Waits like `concurrent.futures.wait`; returns (done, not_done), each in input order.

        Starts futures not started yet. Errors of futures are not raised here: read
        `future.exception`. When a `timeout` expires, the futures still running are
        returned as done with a TimeoutError as their exception (as in Tensorlake).
        """
        if isinstance(futures, Future):
            raise SDKUsageError("Future.wait futures must be an iterable of Futures, got a single Future")
        items = list(futures)
        if timeout is not None:
            _check_seconds("Future.wait timeout", timeout)
        if not isinstance(return_when, RETURN_WHEN):
            raise SDKUsageError(f"Not supported return_when value: '{return_when}'")
        for f in items:
            if not isinstance(f, Future):
                raise SDKUsageError(f"Cannot run a non-Future object {f}.")
        for f in items:
            if not f._started:
                f.run()
        return _hooks.runtime().wait_futures(items, timeout, return_when)

    # -- runtime API ---------------------------------------------------------------
    @property
    def _run_hook_was_called(self) -> bool:
        """Tensorlake's name for `_started` (some Tensorlake tests read it)."""
        return self._started

    def _done_result(self) -> Any:
        if not self.done():
            raise InternalError(f"Attempt to get result of a Future that is not done: {self}")
        if self._exception is not None:
            raise self._exception
        return self._result

    def _set_result(self, value: Any) -> None:
        self._result = value

    def _set_exception(self, error: TensorlakeError) -> None:
        self._exception = error

    def __reduce__(self):
        raise SDKUsageError(
            f"Attempt to pickle {self}. It cannot be stored inside an object "
            "which is a function argument or returned from a function."
        )

    def _describe(self) -> str:
        return "Future"

    def __repr__(self) -> str:
        state = "done" if self.done() else ("started" if self._started else "not started")
        return f"<{self._describe()} id={self._id} {state}>"

    def __str__(self) -> str:
        """The future's structure as Tensorlake prints it in error messages (at most ~1000 chars)."""
        return _pretty(self, 0, _PRETTY_LIMIT)


class FunctionCallFuture(Future):
    def __init__(self, function: Any, args: list, kwargs: dict) -> None:
        super().__init__()
        self._function = function
        self._args = args
        self._kwargs = kwargs

    @property
    def _function_name(self) -> str:
        return self._function._name

    def _describe(self) -> str:
        return f"Future of {self._function_name}()"


class MapFuture(Future):
    def __init__(self, function: Any, items: Any) -> None:
        super().__init__()
        self._function = function
        self._items = items

    @property
    def _function_name(self) -> str:
        return self._function._name

    def _describe(self) -> str:
        return f"Future of {self._function_name}.map()"


class ReduceFuture(Future):
    def __init__(self, function: Any, items: Any, initial: Any) -> None:
        super().__init__()
        self._function = function
        self._items = items
        self._initial = initial

    @property
    def _function_name(self) -> str:
        return self._function._name

    def _describe(self) -> str:
        return f"Future of {self._function_name}.reduce()"


# Tensorlake's name for it.
ReduceOperationFuture = ReduceFuture


def _wrap_future_into_coroutine(future: Future) -> Coroutine:
    """A native coroutine for the future: starts it when first stepped, then awaits it."""

    async def trellis_function_coroutine() -> Any:
        if not future._started:
            future.run()
        return await future

    coroutine = trellis_function_coroutine()
    future._coroutine = coroutine
    _hooks.register_coroutine(coroutine, future)
    return coroutine


def _unwrap_future(value: Any) -> Any:
    """The Future behind a Future, a Trellis coroutine or a Task running one; else the value."""
    if isinstance(value, Future):
        return value
    coroutine = None
    if isinstance(value, asyncio.Task):
        coroutine = value.get_coro()
    elif isinstance(value, Coroutine):
        coroutine = value
    if coroutine is not None:
        future = _hooks.coroutine_to_future(coroutine)
        if future is not None:
            return future
    return value


def _is_awaitable_handle(value: Any) -> bool:
    return isinstance(value, (Future, asyncio.Task, Coroutine))


# -- how futures read in error messages (Tensorlake's layout) ------------------------------------
_PRETTY_LIMIT = 1000
_PRETTY_STEP = 2


def _pretty(obj: Any, indent: int, limit: int) -> str:
    value = _unwrap_future(obj)
    if isinstance(value, FunctionCallFuture):
        entries = [(None, a) for a in value._args] + list(value._kwargs.items())
        head = f"Tensorlake Function Call Future {value._function_name}("
        return _pretty_block(head, entries, ")", indent, limit)
    if isinstance(value, (MapFuture, ReduceFuture)):
        op = "Map" if isinstance(value, MapFuture) else "Reduce"
        head = f"Tensorlake {op} Operation Future of '{value._function_name}' over "
        items = _unwrap_future(value._items)
        if isinstance(items, MapFuture):
            return head + _pretty(items, indent, limit - len(head))
        entries = []
        if isinstance(value, ReduceFuture) and value._initial is not _MISSING:
            entries.append((None, value._initial))
        entries += [(None, item) for item in (items if isinstance(items, list) else [items])]
        return _pretty_block(head + "[", entries, "]", indent, limit, truncate_first=not isinstance(value, ReduceFuture) or value._initial is _MISSING)
    try:
        text = repr(obj)
    except Exception:
        return f"<unprintable object of type {type(obj)}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pretty_block(head: str, entries: list, close: str, indent: int, limit: int, truncate_first: bool = True) -> str:
    parts = [head]
    if entries:
        parts.append("\n")
    count = sum(len(p) for p in parts)
    inner = " " * (indent + _PRETTY_STEP)
    for i, (key, value) in enumerate(entries):
        line = inner + (f"{key}=" if key is not None else "") + _pretty(value, indent + _PRETTY_STEP, limit - count) + ",\n"
        if (truncate_first or i > 0) and count + len(line) >= limit:
            parts += [inner, "...,\n"]
            break
        parts.append(line)
        count += len(line)
    if entries:
        parts.append(" " * indent)
    parts.append(close)
    return "".join(parts)
