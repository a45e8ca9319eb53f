"""Entry points that start requests; the runners plug in through `_hooks`."""

from typing import Any

from . import _hooks, _registry
from .decorators import is_application
from .exceptions import SDKUsageError
from .function import Function
from .request import Request


def _resolve(application: Any) -> Function:
    if isinstance(application, str):
        fn = _registry.get_function(application)
        if fn is None:
            raise SDKUsageError(f"Function with name '{application}' is not defined")
        application = fn
    if not isinstance(application, Function):
        raise SDKUsageError(f"application must be an @application() function or its name, got {application!r}")
    if not is_application(application):
        raise SDKUsageError(  # Tensorlake's text
            f"Tensorlake Function '{application._name}' is not an application function and cannot be run "
            "as an application. To make it an application function, add @application() decorator to it."
        )
    return application


def run_local_application(application: Function | str, *args: Any, **kwargs: Any) -> Request:
    """Runs the application in this process and returns the finished Request."""
    return _hooks.launcher("local")(_resolve(application), list(args), dict(kwargs))


def run_remote_application(application: Function | str, *args: Any, **kwargs: Any) -> Request:
    """Starts the application on a cluster through the HTTP invoke API."""
    name = application if isinstance(application, str) else _resolve(application)._name
    return _hooks.launcher("remote")(name, list(args), dict(kwargs))
