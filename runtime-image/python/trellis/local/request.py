"""The finished request the local runner hands back, and how its failure is shown."""

import sys
from typing import Any

from .._core import values
from ..interface.exceptions import RequestError, RequestFailed
from ..interface.request import Request


class LocalRequest(Request):
    def __init__(self, id: str, outcome: tuple, app: Any, runner: Any) -> None:
        super().__init__(id)
        self._outcome = outcome
        self._app = app
        self.progress_updates = runner.progress_updates
        self.metrics = runner.metrics
        self.state = runner.state

    def output(self) -> Any:
        kind, payload = self._outcome
        if kind == "error":
            if payload.get("request_error"):
                raise RequestError(payload["message"])
            raise RequestFailed(payload.get("reason", "function_error"))
        return values.decode_app_output(self._app, payload)


def print_failure(info: dict, call: str | None = None) -> None:
    """Shows a failed request on stderr; `call` is how the failed root call reads in Tensorlake's
    message ("Tensorlake Function Call Future app(...) failed due to exception: ...")."""
    if info.get("request_error"):
        return
    if call is not None and info.get("traceback") and not info.get("cause"):
        print(f"\nFunctionError: {call} failed due to exception: \n{info['traceback']}", file=sys.stderr)
    print(f"Request failed: function '{info.get('function')}' {info.get('type')}: {info.get('message')}",
          file=sys.stderr)
    if info.get("traceback"):
        print(info["traceback"], file=sys.stderr, end="")
