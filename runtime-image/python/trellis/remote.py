"""Client of the operator's invoke API (Tensorlake's v1 routes), for run_remote_application.

Configuration: the keyword options url=, namespace=, token= of run_remote_application (they are
not passed to the application), else TRELLIS_API_URL (e.g. http://127.0.0.1:8080),
TRELLIS_NAMESPACE (default "default"), TRELLIS_TOKEN (a bearer token, optional); Tensorlake's
TENSORLAKE_API_URL, INDEXIFY_NAMESPACE and TENSORLAKE_API_KEY when ours are not set.

Routes and shapes used (those of Tensorlake's v1 API, served by the operator's http-api):
  POST {base}/v1/namespaces/{ns}/applications/{app}         no input: no body; one positional input:
                                                             a JSON body (a File: its bytes under its
                                                             content type); several, or keywords:
                                                             multipart/form-data, parts "0", "1", …
                                                             positional and one part per keyword, each
                                                             application/json or a File's own type
                                                             -> {"request_id": "..."}
  GET  .../applications/{app}/requests/{id}                  -> {"outcome": null | "success" |
                                                                  {"failure": reason},
                                                                 "request_error": null |
                                                                  {"function_name", "message"}}
  GET  .../applications/{app}/requests/{id}/output           -> the output: application/json, or
                                                                 application/python-pickle for a
                                                                 value with no JSON form (asked for
                                                                 with Accept), or another type for
                                                                 a File
"""

import json
import os
import pickle
import uuid
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


PICKLE = "application/python-pickle"


def _config(url: str | None = None, namespace: str | None = None, token: str | None = None) -> tuple[str, str, dict]:
    env = os.environ.get
    # Tensorlake's variable names work too, so code and CI set up for Tensorlake run unchanged.
    base = url or env("TRELLIS_API_URL") or env("TENSORLAKE_API_URL")
    if not base:
        raise SDKUsageError(
            "run_remote_application needs url= or TRELLIS_API_URL (or TENSORLAKE_API_URL): the operator's HTTP API base URL"
        )
    headers = {"Accept": "application/json"}
    token = token or env("TRELLIS_TOKEN") or env("TENSORLAKE_API_KEY")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    ns = namespace or env("TRELLIS_NAMESPACE") or env("INDEXIFY_NAMESPACE") or "default"
    return base.rstrip("/"), ns, headers


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
    def __init__(self, id: str, app: str, config: tuple[str, str, dict] | None = None) -> None:
        super().__init__(id)
        self._app = app
        self._config = config

    def _url(self, suffix: str = "") -> tuple[str, dict]:
        base, ns, headers = self._config or _config()
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
        # A Python client may take a pickled output (from its own cluster); other clients get 406.
        status, content_type, body = _http("GET", url, dict(headers, Accept=f"application/json, {PICKLE}, */*"))
        if status >= 300:
            _json(status, body, f"output of request {self._id}")
        kind = content_type.split(";")[0].strip()
        if kind == "application/json":
            return json.loads(body) if body else None
        if kind == PICKLE:
            return pickle.loads(body)
        return File(body, content_type or "application/octet-stream")


def _multipart(fields: dict[str, Any]) -> tuple[bytes, str]:
    """Each field one part with a filename, so that the server sees its content type."""
    boundary = f"trellis-{uuid.uuid4().hex}"
    out = b""
    for name, value in fields.items():
        if isinstance(value, File):
            data, content_type = value.content, value.content_type or "application/octet-stream"
        else:
            data, content_type = json.dumps(_json_input(value)).encode(), "application/json"
        out += (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _json_input(value: Any) -> Any:
    dumped = values._pydantic_dump(value)
    value = dumped if dumped is not None else value
    if not values.is_json_exact(value):
        raise SerializationError("the inputs of a remote application must be JSON (or a File)")
    return value


def run_remote(name: str, args: list, kwargs: dict) -> RemoteRequest:
    config = _config(kwargs.pop("url", None), kwargs.pop("namespace", None), kwargs.pop("token", None))
    base, ns, headers = config
    if len(args) == 1 and not kwargs and isinstance(args[0], File):
        data, content_type = args[0].content, args[0].content_type
    elif len(args) == 1 and not kwargs:
        data, content_type = json.dumps(_json_input(args[0])).encode(), "application/json"
    elif not args and not kwargs:
        data, content_type = b"", "application/json"
    else:
        # Keyword names are identifiers, so they never clash with the numbered positional parts.
        data, content_type = _multipart({**{str(i): a for i, a in enumerate(args)}, **kwargs})
    app = urllib.parse.quote(name, safe="")
    status, _, resp = _http("POST", f"{base}/v1/namespaces/{ns}/applications/{app}",
                            dict(headers, **{"Content-Type": content_type}), data or None)
    meta = _json(status, resp, f"invoke {name}")
    request_id = meta.get("request_id") or meta.get("id")
    if not request_id:
        raise RemoteAPIError(status, f"invoke {name}: the response has no request_id: {meta}")
    return RemoteRequest(request_id, name, config)
