"""Test helper of Tensorlake: run an application locally or remotely."""

import inspect
from typing import Any

from trellis import Request, run_local_application, run_remote_application
from trellis.interface import _registry
from trellis.interface.function import Function

_UNSET = object()


def run_application(application: Function | str, *args: Any, remote: Any = _UNSET, **kwargs: Any) -> Request:
    """`run_application(app, *args, remote=False, **kwargs)`.

    Tensorlake's own form `run_application(app, remote, *args)` is accepted too: when
    `remote=` is not given and the first positional argument is a bool, that bool is `remote`,
    unless only the arguments with it bind to the application's parameters (applications
    ignore extra arguments, so binding decides only that one case).
    """
    if remote is _UNSET:
        remote = False
        if args and isinstance(args[0], bool):
            if _binds(application, args[1:], kwargs) or not _binds(application, args, kwargs):
                remote, args = args[0], args[1:]
    if not isinstance(remote, bool):
        from trellis import SDKUsageError

        raise SDKUsageError(f"run_application remote must be a bool, got {remote!r}")
    if remote:
        return run_remote_application(application, *args, **kwargs)
    return run_local_application(application, *args, **kwargs)


def _binds(application: Any, args: tuple, kwargs: dict) -> bool:
    fn = _registry.get_function(application) if isinstance(application, str) else application
    if not isinstance(fn, Function):
        return False
    try:
        inspect.signature(fn._original_function).bind(*args, **kwargs)
        return True
    except TypeError:
        return False
