"""Trellis: durable Python function graphs on Kubernetes (Tensorlake Applications API)."""

from ._core import graph as _graph
from .interface import (
    RETURN_WHEN,
    ApplicationCapability,
    DeserializationError,
    File,
    Function,
    FunctionError,
    FunctionProgress,
    Future,
    Headers,
    HttpBody,
    Image,
    Logger,
    InternalError,
    RemoteAPIError,
    Request,
    RequestContext,
    RequestError,
    RequestFailed,
    RequestMetrics,
    RequestNotFinished,
    RequestState,
    Retries,
    SDKUsageError,
    SerializationError,
    TensorlakeError,
    TensorlakeException,
    TimeoutError,
    TrellisError,
    application,
    cls,
    function,
    run_local_application,
    run_remote_application,
)
from .interface import _hooks as _interface_hooks

__version__ = "0.1.0"

_graph.install()


def _launch_local(app, args, kwargs):
    from ._core import values
    from .local import run_local

    # The application boundary (JSON by the type hints; arguments the application does not
    # take are ignored): a bad input raises here, before the request starts.
    args, kwargs = values.encode_app_inputs(app, args, kwargs)
    return run_local(app, args, kwargs)


def _launch_remote(name, args, kwargs):
    from .remote import run_remote

    return run_remote(name, args, kwargs)


_interface_hooks.register_launcher("local", _launch_local)
_interface_hooks.register_launcher("remote", _launch_remote)

__all__ = [
    "application",
    "cls",
    "function",
    "run_local_application",
    "run_remote_application",
    "DeserializationError",
    "File",
    "Function",
    "FunctionError",
    "FunctionProgress",
    "Future",
    "Headers",
    "HttpBody",
    "ApplicationCapability",
    "Image",
    "Logger",
    "InternalError",
    "RemoteAPIError",
    "Request",
    "RequestContext",
    "RequestError",
    "RequestFailed",
    "RequestMetrics",
    "RequestNotFinished",
    "RequestState",
    "Retries",
    "RETURN_WHEN",
    "SDKUsageError",
    "SerializationError",
    "TensorlakeError",
    "TensorlakeException",
    "TimeoutError",
    "TrellisError",
]
