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
        raise SDKUsageError(f"{name} must be a non-negative finite number of seconds, got {value!r}")


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
            raise SDKUsageError(f"{self} is already started; a future can be run only once")
        _hooks.runtime().run_future(self)
        return self

    def run_later(self, start_delay: float) -> "Future":
        """Starts the future after `start_delay` seconds and returns it."""
        _check_seconds("run_later start_delay", start_delay)
        if not self._started:
            self._start_delay = float(start_delay)
        return self.run()

    def result(self, timeout: float | None = None) -> Any:
        """Blocks until the future is done and returns its value or raises its error.

        Raises FunctionError (or the child's RequestError) if the call failed and
        TimeoutError if `timeout` seconds pass first.
        """
        if timeout is not None:
            _check_seconds("result timeout", timeout)
        if self.done():
            return self._done_result()
        if not self._started:
            self.run()
        _, not_done = _hooks.runtime().wait_futures([self], timeout, RETURN_WHEN.ALL_COMPLETED)
        if not_done:
            from .exceptions import TimeoutError

            raise TimeoutError(f"{self} did not finish within {timeout} seconds")
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
                "Future.coroutine() can only be called from an async function; "
                "use Future.result() in a sync function"
            ) from None
        if self._started:
            raise SDKUsageError(f"Future.coroutine() cannot be called on {self}: it is already started")
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
        `future.exception`.
        """
        if isinstance(futures, Future):
            raise SDKUsageError("Future.wait futures must be an iterable of Futures, got a single Future")
        items = list(futures)
        if timeout is not None:
            _check_seconds("Future.wait timeout", timeout)
        if not isinstance(return_when, RETURN_WHEN):
            raise SDKUsageError(
                f"Future.wait return_when must be a RETURN_WHEN member "
                f"(FIRST_COMPLETED, FIRST_FAILURE, ALL_COMPLETED), got {return_when!r}"
            )
        for i, f in enumerate(items):
            if not isinstance(f, Future):
                raise SDKUsageError(f"Future.wait futures[{i}] must be a Future, got {type(f).__name__}")
        for f in items:
            if not f._started:
                f.run()
        return _hooks.runtime().wait_futures(items, timeout, return_when)

    # -- runtime API ---------------------------------------------------------------
    def _done_result(self) -> Any:
        if not self.done():
            raise InternalError(f"result of {self} read before it is done")
        if self._exception is not None:
            raise self._exception
        return self._result

    def _set_result(self, value: Any) -> None:
        self._result = value

    def _set_exception(self, error: TensorlakeError) -> None:
        self._exception = error

    def __reduce__(self):
        raise SDKUsageError(f"{self} cannot be pickled")

    def _describe(self) -> str:
        return "Future"

    def __repr__(self) -> str:
        state = "done" if self.done() else ("started" if self._started else "not started")
        return f"<{self._describe()} id={self._id} {state}>"

    __str__ = __repr__


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
