"""The slots a runtime fills. The interface calls only these; it never imports a runtime.

A runtime object provides:
  run_future(future)                                  start a future (non-blocking)
  wait_futures(futures, timeout, return_when)         block; set results; return (done, not_done)
  await_future(future) -> generator                   the body of `await future`
  request_context() -> RequestContext                 the context of the running call
Launchers (`local`, `remote`) start requests: launcher(app, args, kwargs) -> Request.
"""

import weakref
from typing import Any, Callable

from .exceptions import SDKUsageError

_runtime: Any = None
_launchers: dict[str, Callable] = {}
# Coroutines returned by async functions, mapped to the Future they stand for.
_coroutine_futures: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def install_runtime(runtime: Any) -> None:
    global _runtime
    _runtime = runtime


def runtime() -> Any:
    if _runtime is None:
        raise SDKUsageError(
            "the Trellis runtime is not initialised: import trellis (or tensorlake.applications) "
            "and run functions through run_local_application or a Trellis worker"
        )
    return _runtime


def register_launcher(kind: str, launcher: Callable) -> None:
    _launchers[kind] = launcher


def launcher(kind: str) -> Callable:
    try:
        return _launchers[kind]
    except KeyError:
        raise SDKUsageError(f"no '{kind}' runner is installed; import trellis first") from None


def register_coroutine(coroutine: Any, future: Any) -> None:
    _coroutine_futures[coroutine] = future


def coroutine_to_future(coroutine: Any) -> Any:
    try:
        return _coroutine_futures.get(coroutine)
    except TypeError:
        return None
