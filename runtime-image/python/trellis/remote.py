"""Client of the operator's invoke API (Tensorlake's v1 routes), for run_remote_application.

Configuration: TRELLIS_API_URL (e.g. http://127.0.0.1:8080), TRELLIS_NAMESPACE (default
"default"), TRELLIS_TOKEN (a bearer token, optional).

Routes and shapes used (those of Tensorlake's v1 API):
  POST {base}/v1/namespaces/{ns}/applications/{app}         JSON body -> {"request_id": "..."}
  GET  .../applications/{app}/requests/{id}                  -> {"outcome": null | "success" |
                                                                  {"failure": reason},
                                                                 "request_error": null | {"message"}}
  GET  .../applications/{app}/requests/{id}/output           -> the output bytes; Content-Type
                                                                 application/json, or another type
                                                                 for a File
"""

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .interface.exceptions import (
    RemoteAPIError,
    RequestError,
    RequestFailed,
    RequestNotFinished,
    SDKUsageError,
    SerializationError,
)
from .interface.file import File
from .interface.request import Request
from ._core import values


def _config() -> tuple[str, str, dict]:
    base = os.environ.get("TRELLIS_API_URL")
    if not base:
        raise SDKUsageError("run_remote_application needs TRELLIS_API_URL (the operator's HTTP API base URL)")
    headers = {"Accept": "application/json"}
    token = os.environ.get("TRELLIS_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return base.rstrip("/"), os.environ.get("TRELLIS_NAMESPACE", "default"), headers


def _http(method: str, url: str, headers: dict, body: bytes | None = None) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()
    except urllib.error.URLError as e:
        raise RemoteAPIError(0, f"cannot reach {url}: {e.reason}") from None


def _json(status: int, body: bytes, what: str) -> Any:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {"message": body.decode(errors="replace")}
    if status >= 300:
        message = data.get("message") if isinstance(data, dict) else None
        raise RemoteAPIError(status, f"{what}: {message or data}")
    return data


class RemoteRequest(Request):
    def __init__(self, id: str, app: str) -> None:
        super().__init__(id)
        self._app = app

    def _url(self, suffix: str = "") -> tuple[str, dict]:
        base, ns, headers = _config()
        app = urllib.parse.quote(self._app, safe="")
        return f"{base}/v1/namespaces/{ns}/applications/{app}/requests/{self._id}{suffix}", headers

    def status(self) -> dict:
        url, headers = self._url()
        status, _, body = _http("GET", url, headers)
        return _json(status, body, f"request {self._id}")

    def output(self, timeout: float | None = None) -> Any:
        """Waits for the request to finish, then returns its output (or raises its failure)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while True:
            meta = self.status()
            outcome = meta.get("outcome")
            if outcome == "success":
                break
            if isinstance(outcome, dict):
                if meta.get("request_error"):
                    raise RequestError(meta["request_error"].get("message", ""))
                raise RequestFailed(outcome.get("failure", "function_error"))
            if deadline is not None and time.monotonic() >= deadline:
                raise RequestNotFinished()
            time.sleep(delay)  # polls the API until the request finishes (bounded by timeout)
            delay = min(delay * 2, 1.0)
        url, headers = self._url("/output")
        status, content_type, body = _http("GET", url, dict(headers, Accept="*/*"))
        if status >= 300:
            _json(status, body, f"output of request {self._id}")
        if content_type.split(";")[0].strip() == "application/json":
            return json.loads(body) if body else None
        return File(body, content_type or "application/octet-stream")


def run_remote(name: str, args: list, kwargs: dict) -> RemoteRequest:
    base, ns, headers = _config()
    if args and kwargs:
        raise SDKUsageError("run_remote_application takes the input positionally or as keywords, not both")
    body: Any = kwargs if kwargs else (args[0] if len(args) == 1 else list(args))
    if isinstance(body, File):
        data, content_type = body.content, body.content_type
    else:
        dumped = values._pydantic_dump(body)
        body = dumped if dumped is not None else body
        if not values.is_json_exact(body):
            raise SerializationError("the request input of a remote application must be JSON (or a File)")
        data, content_type = json.dumps(body).encode(), "application/json"
    app = urllib.parse.quote(name, safe="")
    status, _, resp = _http("POST", f"{base}/v1/namespaces/{ns}/applications/{app}",
                            dict(headers, **{"Content-Type": content_type}), data)
    meta = _json(status, resp, f"invoke {name}")
    request_id = meta.get("request_id") or meta.get("id")
    if not request_id:
        raise RemoteAPIError(status, f"invoke {name}: the response has no request_id: {meta}")
    return RemoteRequest(request_id, name)
