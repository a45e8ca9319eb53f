"""`tensorlake.applications.interface`: Tensorlake's public interface module path, the same objects.

Its submodules (`…interface.exceptions`, `…interface.futures`, …) are documented as public by
Tensorlake, so they are the SDK's own modules under that name (one object per class, so
`isinstance` and `except` agree whichever path the code imported).
"""

import importlib as _importlib
import sys as _sys

from trellis.interface import *  # noqa: F401,F403
from trellis.interface import __all__ as _all

_SUBMODULES = (
    "decorators",
    "exceptions",
    "file",
    "function",
    "futures",
    "http",
    "logger",
    "request",
    "request_context",
    "retries",
    "run",
)
for _name in _SUBMODULES:
    _module = _importlib.import_module(f"trellis.interface.{_name}")
    _sys.modules[f"{__name__}.{_name}"] = _module
    # A public name (the `function` decorator) wins over the submodule of the same name; the
    # submodule stays importable through sys.modules.
    if _name not in _all:
        globals()[_name] = _module

__all__ = list(_all)
