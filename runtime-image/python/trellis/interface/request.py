from typing import Any

from .exceptions import InternalError


class Request:
    """A started request: `.id` and `.output()` (raises RequestFailed / RequestError on failure)."""

    def __init__(self, id: str):
        self._id = id

    @property
    def id(self) -> str:
        return self._id

    def output(self) -> Any:
        raise InternalError("Request.output is implemented by the runner")

    def __repr__(self) -> str:
        return f"Request(id={self._id!r})"
