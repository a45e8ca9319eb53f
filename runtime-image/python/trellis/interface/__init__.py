"""The public API. Imports nothing from any runtime (local runner, worker)."""

from .decorators import application, cls, function
from .exceptions import (
    DeserializationError,
    FunctionError,
    InternalError,
    RemoteAPIError,
    RequestError,
    RequestFailed,
    RequestNotFinished,
    SDKUsageError,
    SerializationError,
    TensorlakeError,
    TensorlakeException,
    TimeoutError,
    TrellisError,
)
from .file import File
from .http import Headers, HttpBody
from .image import Image
from .logger import Logger
from .function import ApplicationCapability, Function
from .futures import RETURN_WHEN, Future
from .request import Request
from .request_context import FunctionProgress, RequestContext, RequestMetrics, RequestState
from .retries import Retries
from .run import run_local_application, run_remote_application

__all__ = [
    "application",
    "cls",
    "function",
    "run_local_application",
    "run_remote_application",
    "DeserializationError",
    "File",
    "Function",
    "Headers",
    "HttpBody",
    "ApplicationCapability",
    "Logger",
    "Image",
    "FunctionError",
    "FunctionProgress",
    "Future",
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
