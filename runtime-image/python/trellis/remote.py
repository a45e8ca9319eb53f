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

Transient failures are retried, so that an operator restart or failover (two replicas behind one
Service) does not fail the caller: connection errors (refused, reset, closed without an answer,
timed out) and HTTP 502, 503 and 504 are retried with exponential backoff and jitter (0.2 s
doubling up to 5 s), and 429 (or 503) after its Retry-After when that is a number of seconds.
Each call (the create POST, one status GET, the output GET) retries for up to 120 s: the keyword
option api_retry_seconds= of run_remote_application, else TRELLIS_API_RETRY_SECONDS (0: one
attempt only). output(timeout=...) retries within its timeout instead. Other statuses (400, 401,
403, 404, 422, 500, …) are answers, not outages: they raise at once. The create POST carries an
Idempotency-Key (one uuid4 per run_remote_application, the same on every retry), so a retried
create whose first attempt did reach the operator returns that request instead of a second one.
When retries run out, RemoteAPIError names the URL, the attempts and the last error.
"""

import errno
import http.client
import json
import os
import pickle
import random
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
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


RETRY_SECONDS = 120.0
RETRY_STATUSES = frozenset({429, 502, 503, 504})
ATTEMPT_TIMEOUT = 30.0  # one attempt's socket timeout; a hung replica is then retried


def _retry_seconds(value: float | None = None) -> float:
    if value is not None:
        return max(0.0, float(value))
    env = os.environ.get("TRELLIS_API_RETRY_SECONDS")
    if not env:
        return RETRY_SECONDS
    try:
        return max(0.0, float(env))
    except ValueError:
        raise SDKUsageError(f"TRELLIS_API_RETRY_SECONDS must be a number of seconds, not {env!r}") from None


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """The pause after failed attempt `attempt` (1, 2, …): 0.2 s doubling up to 5 s, jittered to
    50-100 % so that clients cut off together do not come back together."""
    base = min(5.0, 0.2 * 2 ** min(attempt - 1, 16))
    return base * (0.5 + 0.5 * (rng or random).random())


def _retry_after(headers: Any) -> float | None:
    value = (headers.get("Retry-After") if headers is not None else None) or ""
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: the backoff applies
    return seconds if seconds >= 0 else None


def _transient(e: BaseException) -> bool:
    """A connection that failed or broke (the replica went away), not a wrong URL or certificate."""
    if isinstance(e, urllib.error.HTTPError):
        return False
    if isinstance(e, urllib.error.URLError):
        return isinstance(e.reason, BaseException) and _transient(e.reason)
    if isinstance(e, ssl.SSLError):
        return False
    if isinstance(e, socket.gaierror):
        return e.errno == socket.EAI_AGAIN
    if isinstance(e, (ConnectionError, TimeoutError, http.client.RemoteDisconnected, http.client.IncompleteRead)):
        return True
    return isinstance(e, OSError) and e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)


def _reason(e: BaseException) -> str:
    reason = e.reason if isinstance(e, urllib.error.URLError) else e
    return f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__


def _http(
    method: str,
    url: str,
    headers: dict,
    body: bytes | None = None,
    *,
    deadline: float | None = None,
) -> tuple[int, str, bytes]:
    """One exchange, retried on transient failures until `deadline` (time.monotonic(); default
    now + TRELLIS_API_RETRY_SECONDS). The first attempt is always made."""
    started = time.monotonic()
    if deadline is None:
        deadline = started + _retry_seconds()
    attempt = 0
    while True:
        attempt += 1
        wait: float | None = None
        timeout = min(ATTEMPT_TIMEOUT, max(5.0, deadline - time.monotonic()))
        req = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as e:
            if e.code not in RETRY_STATUSES:
                return e.code, e.headers.get("Content-Type", ""), e.read()
            status, last = e.code, f"HTTP {e.code}: {_message(_read_quietly(e))}"
            if e.code in (429, 503):
                wait = _retry_after(e.headers)
        except (OSError, http.client.HTTPException) as e:  # URLError is an OSError
            if not _transient(e):
                if isinstance(e, urllib.error.URLError):
                    raise RemoteAPIError(0, f"cannot reach {url}: {e.reason}") from None
                raise
            status, last = 0, _reason(e)
        told = wait is not None
        if wait is None:
            wait = backoff(attempt)
        left = deadline - time.monotonic()
        if left <= 0 or (told and wait > left):
            # A Retry-After past the deadline is not waited for: the server said not before then.
            raise RemoteAPIError(
                status,
                f"{method} {url}: gave up after {attempt} attempt{'s' * (attempt != 1)} in "
                f"{time.monotonic() - started:.1f}s; last error: {last}",
            )
        wait = min(wait, left)
        time.sleep(wait)


def _read_quietly(e: urllib.error.HTTPError) -> bytes:
    try:
        return e.read()
    except (OSError, http.client.HTTPException):
        return b""  # the replica went away mid-answer: the status says enough


def _message(body: bytes) -> str:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return body.decode(errors="replace")[:500]
    message = data.get("message") if isinstance(data, dict) else None
    return str(message or data)[:500]


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
    def __init__(
        self,
        id: str,
        app: str,
        config: tuple[str, str, dict] | None = None,
        retry_seconds: float | None = None,
    ) -> None:
        super().__init__(id)
        self._app = app
        self._config = config
        self._retry_seconds = retry_seconds

    def _retry_deadline(self) -> float:
        return time.monotonic() + _retry_seconds(self._retry_seconds)

    def _url(self, suffix: str = "") -> tuple[str, dict]:
        base, ns, headers = self._config or _config()
        app = urllib.parse.quote(self._app, safe="")
        return f"{base}/v1/namespaces/{ns}/applications/{app}/requests/{self._id}{suffix}", headers

    def status(self) -> dict:
        return self._status(self._retry_deadline())

    def _status(self, deadline: float) -> dict:
        url, headers = self._url()
        status, _, body = _http("GET", url, headers, deadline=deadline)
        return _json(status, body, f"request {self._id}")

    def output(self, timeout: float | None = None) -> Any:
        """Waits for the request to finish, then returns its output (or raises its failure).
        Transient API failures are retried within `timeout` (else for TRELLIS_API_RETRY_SECONDS
        per call)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.05
        while True:
            meta = self._status(deadline if deadline is not None else self._retry_deadline())
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
        accept = dict(headers, Accept=f"application/json, {PICKLE}, */*")
        if deadline is None:
            deadline = self._retry_deadline()
        status, content_type, body = _http("GET", url, accept, deadline=deadline)
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
    retry_seconds = kwargs.pop("api_retry_seconds", None)
    deadline = time.monotonic() + _retry_seconds(retry_seconds)
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
    # One key for every attempt: a retried create returns the request a lost answer had started.
    post_headers = dict(headers, **{"Content-Type": content_type, "Idempotency-Key": str(uuid.uuid4())})
    status, _, resp = _http(
        "POST", f"{base}/v1/namespaces/{ns}/applications/{app}", post_headers, data or None, deadline=deadline
    )
    meta = _json(status, resp, f"invoke {name}")
    request_id = meta.get("request_id") or meta.get("id")
    if not request_id:
        raise RemoteAPIError(status, f"invoke {name}: the response has no request_id: {meta}")
    return RemoteRequest(request_id, name, config, retry_seconds)
