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


# Validation shared by every runtime's implementation. The texts are Tensorlake's; where the
# protocol is stricter (non-empty names and keys, metric values >= 0) the same texts are used.
def check_state_key(key: Any) -> None:
    if not isinstance(key, str) or not key:
        raise SDKUsageError(f"State key must be a string, got: {key}")


def _non_negative_finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        as_float = float(value)
    except OverflowError:
        return None
    if not math.isfinite(as_float) or as_float < 0:
        return None
    return as_float


def check_progress(current: Any, total: Any, message: Any, attributes: Any) -> tuple[float, float]:
    cur = _non_negative_finite(current)
    if cur is None:
        raise SDKUsageError(f"'current' needs to be a number, got: {current}")
    tot = _non_negative_finite(total)
    if tot is None:
        raise SDKUsageError(f"'total' needs to be a number, got: {total}")
    if message is not None and not isinstance(message, str):
        raise SDKUsageError(f"'message' needs to be a string, got: {message}")
    if attributes is not None:
        if not isinstance(attributes, dict):
            raise SDKUsageError(
                f"'attributes' needs to be a dictionary of string key/value pairs, got: {attributes}"
            )
        for key, value in attributes.items():
            if not isinstance(key, str):
                raise SDKUsageError(f"'attributes' key {key} needs to be a string")
            if not isinstance(value, str):
                raise SDKUsageError(f"'attributes' value {value} for key '{key}' needs to be a string")
    return cur, tot


def check_metric(kind: str, name: Any, value: Any) -> float:
    title = "Counter" if kind == "counter" else "Timer"
    if not isinstance(name, str) or not name:
        raise SDKUsageError(f"{title} name must be a string, got: {name}")
    if kind == "counter":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SDKUsageError(f"Counter value must be an int, got: {value}")
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise SDKUsageError(f"Timer value must be a finite number, got: {value}")
    return value
