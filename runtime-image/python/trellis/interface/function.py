"""Function objects produced by `@function()`, and their call forms."""

import inspect
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from .exceptions import SDKUsageError
from .futures import (
    _MISSING,
    FunctionCallFuture,
    Future,
    MapFuture,
    ReduceFuture,
    _unwrap_future,
    _wrap_future_into_coroutine,
)
from .retries import Retries


@dataclass
class FunctionConfig:
    name: str
    description: str
    cpu: float
    memory: float
    ephemeral_disk: float
    gpu: Any
    timeout: float
    image: Any
    secrets: list
    retries: Retries | None
    min_containers: int | None
    max_containers: int | None
    warm_containers: int | None
    max_concurrency: int
    class_name: str | None = None
    class_method_name: str | None = None
    class_init_timeout: float | None = None

    @property
    def function_name(self) -> str:
        """Tensorlake's name for `name` (code and tools written for Tensorlake read this one)."""
        return self.name


@dataclass
class ApplicationConfig:
    tags: dict = field(default_factory=dict)
    retries: Retries = field(default_factory=Retries)
    region: str | None = None
    allow: list = field(default_factory=list)


# What an application may allow with @application(allow=[...]) (Tensorlake's capability names).
ApplicationCapability = Literal["unauthenticated_requests"]


class Function:
    """A function of an application. Call it, `.future(...)`, `.map(...)`, `.reduce(...)`."""

    def __init__(self, original: Callable, config: FunctionConfig):
        self._original_function = original
        self._function_config = config
        self._application_config: ApplicationConfig | None = None
        self._function_decorated = False  # set by @function(); @application() alone leaves it False
        self._future_factory = FunctionFutureFactory(self)
        self._is_async = inspect.iscoroutinefunction(original)
        for attr in ("__doc__", "__name__", "__qualname__", "__module__", "__annotations__", "__wrapped__"):
            if attr == "__wrapped__":
                self.__wrapped__ = original
            elif hasattr(original, attr):
                setattr(self, attr, getattr(original, attr))

    @property
    def _name(self) -> str:
        return self._function_config.name

    @property
    def future(self) -> "FunctionFutureFactory":
        return self._future_factory

    def __call__(self, *args, **kwargs) -> Any:
        """Sync functions: block and return the value. Async functions: return a coroutine."""
        future = self.future(*args, **kwargs)
        if self._is_async:
            return _wrap_future_into_coroutine(future)
        future.run()
        return future.result()

    def map(self, items) -> Any:
        """One call per item, output in input order. Coroutine for async functions."""
        future = self.future.map(items)
        if self._is_async:
            return _wrap_future_into_coroutine(future)
        future.run()
        return future.result()

    def reduce(self, items, initial: Any = _MISSING, /) -> Any:
        """Left fold of `items` with this function. Coroutine for async functions."""
        future = self.future.reduce(items, initial)
        if self._is_async:
            return _wrap_future_into_coroutine(future)
        future.run()
        return future.result()

    def __get__(self, instance: Any, owner: Any) -> "Function":
        # Methods of @cls() classes run on the runtime's own instance.
        return self

    def __reduce__(self):
        raise SDKUsageError(_pickle_message(self))

    def _signature(self) -> inspect.Signature | None:
        """The parameters callers pass (without `self` for @cls() methods); cached."""
        key = self._function_config.class_name is not None
        cached = self.__dict__.get("_sig_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            sig = inspect.signature(self._original_function)
        except (TypeError, ValueError):
            sig = None
        if sig is not None and key:
            sig = sig.replace(parameters=list(sig.parameters.values())[1:])
        self._sig_cache = (key, sig)
        return sig

    def __repr__(self) -> str:
        return f"<Trellis function '{self._name}'>"

    __str__ = __repr__


class FunctionFutureFactory:
    """`f.future(...)`, `f.future.map(...)`, `f.future.reduce(...)`: futures, never started."""

    def __init__(self, function: Function):
        self._function = function

    def __call__(self, *args, **kwargs) -> Future:
        sig = self._function._signature()
        if sig is not None:
            try:
                sig.bind(*args, **kwargs)
            except TypeError as e:
                raise SDKUsageError(f"call of function '{self._function._name}': {e}") from None
        return FunctionCallFuture(self._function, list(args), dict(kwargs))

    def map(self, items) -> Future:
        return MapFuture(self._function, _check_items(self._function, "map", items))

    def reduce(self, items, initial: Any = _MISSING, /) -> Future:
        items = _check_items(self._function, "reduce", items)
        if isinstance(items, list) and not items and initial is _MISSING:
            raise SDKUsageError(
                f"{self._function._name}.reduce(items) got an empty list and no initial value; "
                "pass an initial value or at least one item"
            )
        return ReduceFuture(self._function, items, initial)

    def __reduce__(self):
        raise SDKUsageError(_pickle_message(self))


def _pickle_message(obj: Any) -> str:
    """Tensorlake's text for a function (or its .future factory) that a value tried to hold."""
    if isinstance(obj, FunctionFutureFactory):
        return (
            f"Attempt to pickle a Tensorlake Function.future factory for Tensorlake Function "
            f"'{obj._function._name}'. It cannot be passed as a function parameter or returned from a "
            "Tensorlake Function."
        )
    return (
        f"Attempt to pickle Tensorlake Function '{obj._name}'. It cannot be passed as a function "
        "parameter or returned from a Tensorlake Function."
    )


def _check_items(function: Function, op: str, items: Any) -> Any:
    handle = _unwrap_future(items)
    if isinstance(handle, Future):
        return items
    # Any iterable is taken as list(items), as Tensorlake does (a str reduces over its characters).
    if not hasattr(items, "__iter__"):
        raise SDKUsageError(
            f"{function._name}.{op}(items): items must be a list (or another iterable, a Future, "
            f"coroutine or Task of a list), got {type(items).__name__}"
        )
    if isinstance(items, Coroutine):
        raise SDKUsageError(
            f"{function._name}.{op}(items): items is a coroutine that is not a Trellis call; "
            "await it first"
        )
    return list(items)
