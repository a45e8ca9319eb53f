"""The running call: who it is, how it names children, and its RequestContext."""

import contextvars
import threading
from typing import Any

from ..interface import request_context as rc
from ..interface.exceptions import SDKUsageError
from ..interface.http import Headers
from . import values
from .ids import child_id


class Backend:
    """What a runtime provides to calls it runs (the local runner or the pod worker)."""

    def create_calls(self, ctx: "CallContext", specs: list[dict]) -> None:
        """Creates child calls (non-blocking); specs are in dependency order."""
        raise NotImplementedError

    def wait(self, ctx: "CallContext", ids: list[str], timeout, return_when) -> dict:
        """Blocks until return_when holds for `ids` or the timeout passes; returns done outcomes."""
        raise NotImplementedError

    def wait_async(self, ctx: "CallContext", call_id: str):
        """On the running event loop: an awaitable of the call's outcome."""
        raise NotImplementedError

    def state_get(self, ctx: "CallContext", key: str) -> dict | None:
        raise NotImplementedError

    def state_set(self, ctx: "CallContext", key: str, value: dict) -> None:
        raise NotImplementedError

    def progress(self, ctx: "CallContext", current: float, total: float, message, attributes) -> None:
        raise NotImplementedError

    def metric(self, ctx: "CallContext", kind: str, name: str, value: float) -> None:
        raise NotImplementedError


class CallContext:
    def __init__(
        self,
        *,
        request_id: str,
        call_id: str,
        attempt: int,
        function: Any,
        backend: Backend,
        headers: dict | None = None,
    ) -> None:
        self.request_id = request_id
        self.call_id = call_id
        self.attempt = attempt
        self.function = function
        self.backend = backend
        self.headers = dict(headers or {})
        self._seq = 0
        self._lock = threading.Lock()

    def next_child_id(self) -> str:
        with self._lock:
            seq = self._seq
            self._seq += 1
        return child_id(self.request_id, self.call_id, seq)


_current: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar("trellis_call", default=None)


def current() -> CallContext:
    ctx = _current.get()
    if ctx is None:
        raise SDKUsageError(
            "this can only be used inside a running function call (and not from threads it starts); "
            "start requests with run_local_application(app, ...) to test locally"
        )
    return ctx


def enter(ctx: CallContext):
    return _current.set(ctx)


def leave(token) -> None:
    _current.reset(token)


class _State(rc.RequestState):
    def __init__(self, ctx: CallContext):
        self._ctx = ctx

    def set(self, key: str, value: Any) -> None:
        rc.check_state_key(key)
        self._ctx.backend.state_set(self._ctx, key, values.encode(value, f"request state value '{key}'"))

    def get(self, key: str, default: Any = None) -> Any:
        rc.check_state_key(key)
        form = self._ctx.backend.state_get(self._ctx, key)
        if form is None:
            return default
        return values.decode(form, f"request state value '{key}'")


class _Progress(rc.FunctionProgress):
    def __init__(self, ctx: CallContext):
        self._ctx = ctx

    def update(self, current, total, message=None, attributes=None) -> None:
        cur, tot = rc.check_progress(current, total, message, attributes)
        self._ctx.backend.progress(self._ctx, cur, tot, message, dict(attributes) if attributes else None)


class _Metrics(rc.RequestMetrics):
    def __init__(self, ctx: CallContext):
        self._ctx = ctx

    def timer(self, name: str, value) -> None:
        self._ctx.backend.metric(self._ctx, "timer", name, rc.check_metric("timer", name, value))

    def counter(self, name: str, value: int = 1) -> None:
        self._ctx.backend.metric(self._ctx, "counter", name, rc.check_metric("counter", name, value))


class RuntimeRequestContext(rc.RequestContext):
    def __init__(self, ctx: CallContext):
        self._ctx = ctx

    @property
    def request_id(self) -> str:
        return self._ctx.request_id

    @property
    def headers(self) -> Headers:
        return Headers(self._ctx.headers)

    @property
    def state(self) -> rc.RequestState:
        return _State(self._ctx)

    @property
    def progress(self) -> rc.FunctionProgress:
        return _Progress(self._ctx)

    @property
    def metrics(self) -> rc.RequestMetrics:
        return _Metrics(self._ctx)
