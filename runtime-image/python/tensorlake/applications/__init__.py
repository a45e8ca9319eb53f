"""`tensorlake.applications`: the same objects as `trellis`."""

# The subpackage `function` (Tensorlake's `function.introspect` path) is loaded first: importing
# a submodule binds its name on this package, and only its first import does, so binding the
# `@function` decorator after it keeps the public name the decorator whatever is imported later.
from . import function as _function_package  # noqa: F401  isort: skip

import trellis as _trellis
from trellis import *  # noqa: F401,F403
from trellis import __all__ as _all

__all__ = list(_all)
del _trellis, _function_package
