"""`tensorlake.applications.interface`: Tensorlake's public interface module path, the same objects."""

from trellis.interface import *  # noqa: F401,F403
from trellis.interface import __all__ as _all

__all__ = list(_all)
