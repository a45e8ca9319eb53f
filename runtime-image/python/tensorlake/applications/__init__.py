"""`tensorlake.applications`: the same objects as `trellis`."""

import trellis as _trellis
from trellis import *  # noqa: F401,F403
from trellis import __all__ as _all

__all__ = list(_all)
del _trellis
