"""Request context: what a running function knows about its request."""

import math
from typing import Any

from . import _hooks
from .exceptions import InternalError, SDKUsageError


class RequestState:
    """Key/value state shared by every function call of one request."""

    def set(self, key: str, value: Any) -> None:
        raise InternalError("RequestState.set is implemented by the runtime")

    def get(self, key: str, default: Any = None) -> Any:
        raise InternalError("RequestState.get is implemented by the runtime")


class RequestMetrics:
    def timer(self, name: str, value: int | float) -> None:
        raise InternalError("RequestMetrics.timer is implemented by the runtime")

    def counter(self, name: str, value: int = 1) -> None:
        raise InternalError("RequestMetrics.counter is implemented by the runtime")


class FunctionProgress:
    def update(
        self,
        current: int | float,
        total: int | float,
        message: str | None = None,
        attributes: dict | None = None,
    ) -> None:
        raise InternalError("FunctionProgress.update is implemented by the runtime")


class RequestContext:
    """`RequestContext.get()` inside a function call returns the running request's context."""

    @classmethod
    def get(cls) -> "RequestContext":
        return _hooks.runtime().request_context()

    @property
    def request_id(self) -> str:
        raise InternalError("RequestContext.request_id is implemented by the runtime")

    @property
    def headers(self):
        """The request's sanitized HTTP headers (a case-insensitive `Headers` mapping)."""
        raise InternalError("RequestContext.headers is implemented by the runtime")

    @property
    def state(self) -> RequestState:
        raise InternalError("RequestContext.state is implemented by the runtime")

    @property
    def progress(self) -> FunctionProgress:
        raise InternalError("RequestContext.progress is implemented by the runtime")

    @property
    def metrics(self) -> RequestMetrics:
        raise InternalError("RequestContext.metrics is implemented by the runtime")


# Validation shared by every runtime's implementation.
def check_state_key(key: Any) -> None:
    if not isinstance(key, str) or not key:
        raise SDKUsageError(f"request state key must be a non-empty string, got {key!r}")


def check_progress(current: Any, total: Any, message: Any, attributes: Any) -> tuple[float, float]:
    values = []
    for name, value in (("current", current), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SDKUsageError(f"progress.update {name} must be a number, got {value!r}")
        try:
            as_float = float(value)
        except OverflowError:
            raise SDKUsageError(f"progress.update {name} is too large: {value!r}") from None
        if not math.isfinite(as_float) or as_float < 0:
            raise SDKUsageError(f"progress.update {name} must be a finite number >= 0, got {value!r}")
        values.append(as_float)
    if message is not None and not isinstance(message, str):
        raise SDKUsageError(f"progress.update message must be a string or None, got {message!r}")
    if attributes is not None and (
        not isinstance(attributes, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in attributes.items())
    ):
        raise SDKUsageError(
            f"progress.update attributes must be a dict of string keys to string values or None, got {attributes!r}"
        )
    return values[0], values[1]


def check_metric(kind: str, name: Any, value: Any) -> float:
    if not isinstance(name, str) or not name:
        raise SDKUsageError(f"metrics.{kind} name must be a non-empty string, got {name!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SDKUsageError(f"metrics.{kind} value must be a finite number, got {value!r}")
    if kind == "counter" and (not isinstance(value, int) or value < 0):
        raise SDKUsageError(f"metrics.counter value must be an integer >= 0, got {value!r}")
    if kind == "timer" and value < 0:
        raise SDKUsageError(f"metrics.timer value must be >= 0 seconds, got {value!r}")
    return value
