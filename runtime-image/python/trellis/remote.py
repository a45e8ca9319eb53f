"""Client of the operator's invoke API (Tensorlake's v1 routes).

Configuration: TRELLIS_API_URL (e.g. http://127.0.0.1:8080), TRELLIS_NAMESPACE
(default "default"), TRELLIS_TOKEN (a Kubernetes bearer token, optional).
"""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .interface.exceptions import RemoteAPIError, RequestError, RequestFailed, RequestNotFinished, SDKUsageError
from .interface.request import Request
from ._core import values


def _config() -> tuple[str, str, dict]:
    base = os.environ.get("TRELLIS_API_URL")
    if not base:
        raise SDKUsageError("run_remote_application needs TRELLIS_API_URL (the operator's HTTP API base URL)")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    token = os.environ.get("TRELLIS_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return base.rstrip("/"), os.environ.get("TRELLIS_NAMESPACE", "default"), headers


def _call(method: str, url: str, headers: dict, body: Any = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else {})
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            detail = json.loads(raw)
        except ValueError:
            detail = {"message": raw.decode(errors="replace")}
        return e.code, detail


class RemoteRequest(Request):
    def __init__(self, id: str, app: str) -> None:
        super().__init__(id)
        self._app = app

    def _url(self, suffix: str = "") -> tuple[str, dict]:
        base, ns, headers = _config()
        app = urllib.parse.quote(self._app, safe="")
        return f"{base}/v1/namespaces/{ns}/applications/{app}/requests/{self._id}{suffix}", headers

    def output(self, timeout: float | None = None, poll_seconds: float = 0.5) -> Any:
        """Waits for the request to finish (polling its status) and returns its output."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            url, headers = self._url()
            status, body = _call("GET", url, headers)
            if status != 200:
                raise RemoteAPIError(status, body.get("message", str(body)))
            outcome = body.get("outcome") or body.get("status")
            if outcome in ("success", "Succeeded"):
                break
            if outcome in ("failure", "Failed"):
                if body.get("request_error"):
                    raise RequestError(body.get("request_error", {}).get("message", ""))
                raise RequestFailed(body.get("failure_reason") or body.get("reason") or "function_error")
            if deadline is not None and time.monotonic() > deadline:
                raise RequestNotFinished()
            time.sleep(poll_seconds)  # polling the API for a condition, with a deadline
        url, headers = self._url("/output")
        status, body = _call("GET", url, headers)
        if status != 200:
            raise RemoteAPIError(status, body.get("message", str(body)))
        return body if not (isinstance(body, dict) and "json" in body) else values.decode(body, "request output")


def run_remote(name: str, args: list, kwargs: dict) -> RemoteRequest:
    base, ns, headers = _config()
    if args and kwargs:
        raise SDKUsageError("run_remote_application takes positional or keyword inputs, not both")
    body: Any = kwargs if kwargs else (args[0] if len(args) == 1 else list(args))
    if not values.is_json_exact(body):
        raise SerializationError_("request input must be JSON for a remote application")
    app = urllib.parse.quote(name, safe="")
    status, resp = _call("POST", f"{base}/v1/namespaces/{ns}/applications/{app}", headers, body)
    if status not in (200, 201, 202):
        raise RemoteAPIError(status, resp.get("message", str(resp)))
    return RemoteRequest(resp.get("request_id") or resp.get("id"), name)


def SerializationError_(message: str):
    from .interface.exceptions import SerializationError

    return SerializationError(message)
