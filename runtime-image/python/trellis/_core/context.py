"""The running call: who it is, how it names children, and its RequestContext."""

import contextvars
import multiprocessing
import os
import threading
import weakref
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
        # Error info of a child that failed with RequestError, once this call has seen one: the
        # request fails with it whatever this call does next (Tensorlake: a parent cannot catch it).
        self.request_error: dict | None = None
        self.pid = os.getpid()

    def next_child_id(self) -> str:
        with self._lock:
            seq = self._seq
            self._seq += 1
        return child_id(self.request_id, self.call_id, seq)


_current: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar("trellis_call", default=None)


# Tensorlake's texts (users' code compares them).
OUTSIDE_FUNCTION = (
    "Tensorlake SDK was called outside of a Tensorlake Function thread or process."
    "Please only call Tensorlake SDK from Tensorlake Functions."
)
NOT_INITIALIZED = (
    "Tensorlake SDK is not initialized. If you are using multiprocessing, please note that "
    "only a RequestContext created in the main process can be used in child processes. "
    "Other SDK features are not available in child processes at the moment."
)


def in_child_process() -> bool:
    """True in a process started by multiprocessing (fork or spawn) from a function's process."""
    return multiprocessing.parent_process() is not None


def check_runtime_process() -> None:
    """Futures work only in the process running the call; a forked copy would wait forever."""
    ctx = _current.get()
    if in_child_process() or (ctx is not None and ctx.pid != os.getpid()):
        raise SDKUsageError(NOT_INITIALIZED)


def current() -> CallContext:
    ctx = _current.get()
    if ctx is None or ctx.pid != os.getpid():
        raise SDKUsageError(OUTSIDE_FUNCTION)
    return ctx


def enter(ctx: CallContext):
    return _current.set(ctx)


def leave(token) -> None:
    _current.reset(token)


class _Ops:
    """What a RequestContext does, run in the call's own process.

    In a child process (multiprocessing, fork or spawn) the same operations travel over the
    parent's bridge (below), as Tensorlake serves a RequestContext used in child processes."""

    def __init__(self, ctx: "CallContext | None", bridge: tuple | None = None) -> None:
        self._ctx = ctx
        self._pid = os.getpid() if ctx is not None else -1
        self._bridge = bridge  # (address, authkey, key) of the process that runs the call

    def do(self, op: str, *args):
        if self._ctx is not None and self._pid == os.getpid():
            return _run_op(self._ctx, op, args)
        if self._bridge is None:
            raise SDKUsageError(NOT_INITIALIZED)
        return _bridge_call(self._bridge, op, args)


def _run_op(ctx: CallContext, op: str, args: tuple):
    backend = ctx.backend
    if op == "state_get":
        return backend.state_get(ctx, *args)
    if op == "state_set":
        return backend.state_set(ctx, *args)
    if op == "progress":
        return backend.progress(ctx, *args)
    if op == "metric":
        return backend.metric(ctx, *args)
    raise SDKUsageError(f"unknown request context operation {op!r}")


class _State(rc.RequestState):
    def __init__(self, ops: _Ops):
        self._ops = ops

    def set(self, key: str, value: Any) -> None:
        rc.check_state_key(key)
        self._ops.do("state_set", key, values.encode(value, f"request state value '{key}'"))

    def get(self, key: str, default: Any = None) -> Any:
        rc.check_state_key(key)
        form = self._ops.do("state_get", key)
        if form is None:
            return default
        return values.decode(form, f"request state value '{key}'")


class _Progress(rc.FunctionProgress):
    def __init__(self, ops: _Ops):
        self._ops = ops

    def update(self, current, total, message=None, attributes=None) -> None:
        cur, tot = rc.check_progress(current, total, message, attributes)
        self._ops.do("progress", cur, tot, message, dict(attributes) if attributes else None)


class _Metrics(rc.RequestMetrics):
    def __init__(self, ops: _Ops):
        self._ops = ops

    def timer(self, name: str, value) -> None:
        self._ops.do("metric", "timer", name, rc.check_metric("timer", name, value))

    def counter(self, name: str, value: int = 1) -> None:
        self._ops.do("metric", "counter", name, rc.check_metric("counter", name, value))


class RuntimeRequestContext(rc.RequestContext):
    def __init__(self, ctx: CallContext | None, *, request_id: str | None = None, headers: dict | None = None,
                 bridge: tuple | None = None):
        self._ctx = ctx
        self._request_id = ctx.request_id if ctx is not None else request_id
        self._headers = dict(ctx.headers if ctx is not None else headers or {})
        if ctx is not None and bridge is None:
            bridge = _bridge_register(ctx)
        self._ops = _Ops(ctx, bridge)

    def __reduce__(self):
        # Onto a multiprocessing queue or a spawned process: a context served by this process.
        return (_rebuild_context, (self._request_id, self._headers, self._ops._bridge))

    @property
    def request_id(self) -> str:
        return self._request_id

    @property
    def headers(self) -> Headers:
        return Headers(self._headers)

    @property
    def state(self) -> rc.RequestState:
        return _State(self._ops)

    @property
    def progress(self) -> rc.FunctionProgress:
        return _Progress(self._ops)

    @property
    def metrics(self) -> rc.RequestMetrics:
        return _Metrics(self._ops)


def _rebuild_context(request_id: str, headers: dict, bridge: tuple | None) -> RuntimeRequestContext:
    return RuntimeRequestContext(None, request_id=request_id, headers=headers, bridge=bridge)


# -- the bridge: serves RequestContexts used in child processes ----------------------------------
_bridge_lock = threading.Lock()
_bridge_server: Any = None  # (listener, authkey, pid)
_bridge_contexts: "weakref.WeakValueDictionary[str, CallContext]" = weakref.WeakValueDictionary()
_bridge_clients: dict = {}  # (pid, address) -> Connection, in a child process


def _after_fork_in_child() -> None:
    # Another thread may have held the lock when the process forked: the child gets a fresh one.
    global _bridge_lock
    _bridge_lock = threading.Lock()
    _bridge_clients.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _bridge_register(ctx: CallContext) -> tuple | None:
    """Starts this process's bridge once; returns how a child process reaches `ctx`."""
    global _bridge_server
    key = f"{ctx.request_id}/{ctx.call_id}/{ctx.attempt}/{id(ctx)}"
    with _bridge_lock:
        if _bridge_server is None or _bridge_server[2] != os.getpid():
            try:
                from multiprocessing.connection import Listener

                authkey = os.urandom(16)
                listener = Listener(family="AF_UNIX", authkey=authkey)
            except Exception:  # no Unix sockets here: child processes cannot use the context
                return None
            _bridge_server = (listener, authkey, os.getpid())
            threading.Thread(target=_bridge_accept, args=(listener,), name="trellis-context-bridge",
                             daemon=True).start()
        _bridge_contexts[key] = ctx
        return (_bridge_server[0].address, _bridge_server[1], key)


def _bridge_accept(listener) -> None:
    while True:
        try:
            conn = listener.accept()
        except Exception:
            continue
        threading.Thread(target=_bridge_serve, args=(conn,), name="trellis-context-bridge-conn",
                         daemon=True).start()


def _bridge_serve(conn) -> None:
    with conn:
        while True:
            try:
                key, op, args = conn.recv()
            except (EOFError, OSError):
                return
            try:
                ctx = _bridge_contexts.get(key)
                if ctx is None:
                    raise SDKUsageError(
                        "the RequestContext used in this child process belongs to a function call that has finished"
                    )
                reply = ("ok", _run_op(ctx, op, args))
            except BaseException as e:  # noqa: BLE001 - every error goes back to the child
                reply = ("error", e)
            try:
                conn.send(reply)
            except Exception:
                try:
                    conn.send(("error", SDKUsageError(f"request context operation {op} failed: {reply[1]!r}")))
                except Exception:
                    return


def _bridge_call(bridge: tuple, op: str, args: tuple):
    address, authkey, key = bridge
    with _bridge_lock:
        slot = (os.getpid(), address)
        conn = _bridge_clients.get(slot)
        if conn is None:
            from multiprocessing.connection import Client

            try:
                conn = Client(address, family="AF_UNIX", authkey=authkey)
            except Exception:
                raise SDKUsageError(NOT_INITIALIZED) from None
            _bridge_clients[slot] = conn
        conn.send((key, op, args))
        kind, value = conn.recv()
    if kind == "error":
        raise value
    return value
