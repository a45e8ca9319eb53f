"""run_remote_application against a stand-in of the v1 invoke routes on 127.0.0.1 (the shapes
named in trellis/remote.py); the operator's real API is tested by the operator's suites."""

import http.client
import json
import pickle
import random
import socket
import ssl
import struct
import threading
import time
import urllib.error
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tensorlake.applications import File, RequestError, RequestFailed, SDKUsageError, run_remote_application
from trellis import RemoteAPIError
from trellis.remote import _transient, backoff


class Api(BaseHTTPRequestHandler):
    requests: dict = {}

    def log_message(self, *args):
        pass

    def _send(self, status: int, body, content_type: str = "application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        parts = self.path.strip("/").split("/")
        assert parts[:3] == ["v1", "namespaces", "team-a"] and parts[3] == "applications"
        assert self.headers["Authorization"] == "Bearer t0ken"
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        rid = f"req{len(self.requests)}"
        self.requests[rid] = {"app": parts[4], "input": payload, "polls": 0}
        self._send(200, {"request_id": rid})

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        rid = parts[6]
        req = self.requests[rid]
        if len(parts) == 8:
            return self._send(200, {"doubled": req["input"] * 2})
        req["polls"] += 1
        if req["polls"] < 2:
            return self._send(200, {"outcome": None, "request_error": None})
        if req["input"] == -1:
            return self._send(200, {"outcome": {"failure": "function_error"}, "request_error": {"message": "no negatives"}})
        if req["input"] == -2:
            return self._send(200, {"outcome": {"failure": "function_timeout"}, "request_error": None})
        self._send(200, {"outcome": "success", "request_error": None})


@pytest.fixture()
def api(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("TRELLIS_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("TRELLIS_NAMESPACE", "team-a")
    monkeypatch.setenv("TRELLIS_TOKEN", "t0ken")
    yield server
    server.shutdown()
    server.server_close()


def test_remote_request_output(api):
    request = run_remote_application("doubler", 21)
    assert request.output(timeout=10) == {"doubled": 42}
    assert Api.requests[request.id]["app"] == "doubler"


def test_remote_request_failures(api):
    with pytest.raises(RequestError, match="^no negatives$"):
        run_remote_application("doubler", -1).output(timeout=10)
    with pytest.raises(RequestFailed, match="^function_timeout$"):
        run_remote_application("doubler", -2).output(timeout=10)


class FormApi(BaseHTTPRequestHandler):
    """Records what run_remote_application sends for several inputs; answers a pickled output."""

    seen: list = []

    def log_message(self, *args):
        pass

    def _send(self, status, data: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        FormApi.seen.append((self.path, dict(self.headers), body))
        self._send(201, json.dumps({"request_id": "r1"}).encode(), "application/json")

    def do_GET(self):
        if self.path.endswith("/output"):
            assert "application/python-pickle" in self.headers["Accept"]
            return self._send(200, pickle.dumps({1, 2}), "application/python-pickle")
        self._send(200, json.dumps({"outcome": "success", "request_error": None}).encode(), "application/json")


def test_remote_options_multipart_and_pickled_output(monkeypatch):
    for k in ("TRELLIS_API_URL", "TRELLIS_NAMESPACE", "TRELLIS_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FormApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        doc = File(b"%PDF-1", "application/pdf")
        request = run_remote_application("calc", 1, [2], scale=3, doc=doc, url=url, namespace="ns1", token="tk")
        assert request.output(timeout=10) == {1, 2}
        path, headers, body = FormApi.seen[-1]
        assert path == "/v1/namespaces/ns1/applications/calc"
        assert headers["Authorization"] == "Bearer tk"
        assert headers["Content-Type"].startswith("multipart/form-data; boundary=")
        boundary = headers["Content-Type"].split("boundary=")[1].encode()
        parts = [p.strip(b"\r\n") for p in body.split(b"--" + boundary)[1:-1]]
        seen = {}
        for part in parts:
            head, _, data = part.partition(b"\r\n\r\n")
            name = head.split(b'name="')[1].split(b'"')[0].decode()
            seen[name] = (head.split(b"Content-Type: ")[1].decode(), data)
        # Tensorlake's form: numbered positional parts, one part per keyword, each with its type.
        assert seen == {
            "0": ("application/json", b"1"),
            "1": ("application/json", b"[2]"),
            "scale": ("application/json", b"3"),
            "doc": ("application/pdf", b"%PDF-1"),
        }
    finally:
        server.shutdown()
        server.server_close()


def test_tensorlakes_environment_variables_select_the_server(api, monkeypatch):
    port = api.server_address[1]
    for k in ("TRELLIS_API_URL", "TRELLIS_NAMESPACE", "TRELLIS_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("TENSORLAKE_API_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("INDEXIFY_NAMESPACE", "team-a")
    monkeypatch.setenv("TENSORLAKE_API_KEY", "t0ken")
    request = run_remote_application("doubler", 4)
    assert request.output(timeout=10) == {"doubled": 8}


def test_no_server_configured_names_both_variables(monkeypatch):
    for k in ("TRELLIS_API_URL", "TENSORLAKE_API_URL"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(SDKUsageError, match="TRELLIS_API_URL .or TENSORLAKE_API_URL."):
        run_remote_application("doubler", 1)


class FlakyApi(BaseHTTPRequestHandler):
    """Plays `script` one step per request, in order: "drop" closes the connection without an
    answer (an operator replica going away), a status (or (status, headers)) answers with it, None
    answers normally; when the script is used up, every request is answered normally."""

    script: list = []
    seen: list = []

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: dict, headers: dict | None = None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _scripted(self) -> bool:
        step = self.script.pop(0) if self.script else None
        if step is None:
            return False
        if step == "drop":
            # Linger 0: the close resets the connection instead of ending it politely.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return True
        status, headers = step if isinstance(step, tuple) else (step, {})
        self._send(status, {"message": f"scripted {status}"}, headers)
        return True

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append(("POST", self.path, self.headers.get("Idempotency-Key")))
        if not self._scripted():
            self._send(200, {"request_id": "r7"})

    def do_GET(self):
        self.seen.append(("GET", self.path, None))
        if self._scripted():
            return
        if self.path.endswith("/output"):
            return self._send(200, {"ok": True})
        self._send(200, {"outcome": "success", "request_error": None})


@pytest.fixture()
def flaky(monkeypatch):
    """A FlakyApi of this test's own (script and seen start empty) and the server's base URL."""
    handler = type("Flaky", (FlakyApi,), {"script": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for k in ("TRELLIS_TOKEN", "TRELLIS_API_RETRY_SECONDS"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("TRELLIS_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("TRELLIS_NAMESPACE", "team-a")
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_transient_failures_are_retried_and_the_create_keeps_its_idempotency_key(flaky):
    api, _ = flaky
    # POST: dropped, 503, answered; status GET: 504, answered; output GET: dropped, 502, answered.
    api.script[:] = ["drop", 503, None, 504, None, "drop", 502]
    request = run_remote_application("doubler", 21)
    assert request.id == "r7"
    assert request.output(timeout=30) == {"ok": True}
    posts = [key for method, _, key in api.seen if method == "POST"]
    assert len(posts) == 3 and len(set(posts)) == 1
    assert uuid.UUID(posts[0]).version == 4
    assert [path.rsplit("/", 1)[-1] for method, path, _ in api.seen if method == "GET"] == ["r7", "r7", "output", "output", "output"]
    # The next request is a new one: a new key.
    run_remote_application("doubler", 21)
    assert api.seen[-1][2] not in (None, posts[0])


@pytest.mark.parametrize("status", [400, 404, 422, 500])
def test_a_permanent_answer_is_not_retried(flaky, status):
    api, _ = flaky
    api.script[:] = [status]
    with pytest.raises(RemoteAPIError, match=f"invoke doubler: scripted {status}") as e:
        run_remote_application("doubler", 1)
    assert e.value.status_code == status
    assert len(api.seen) == 1


def test_an_operator_that_stays_unavailable_is_given_up_on_at_the_deadline(flaky, monkeypatch):
    api, url = flaky
    monkeypatch.setenv("TRELLIS_API_RETRY_SECONDS", "1")
    api.script[:] = [503] * 1000
    started = time.monotonic()
    with pytest.raises(RemoteAPIError) as e:
        run_remote_application("doubler", 1)
    took = time.monotonic() - started
    assert 0.9 <= took < 3
    assert e.value.status_code == 503
    message = str(e.value)
    assert f"POST {url}/v1/namespaces/team-a/applications/doubler: gave up after " in message
    assert "last error: HTTP 503: scripted 503" in message
    attempts = int(message.split("gave up after ")[1].split(" ")[0])
    assert attempts == len(api.seen) and attempts >= 3


def test_nothing_listening_is_retried_until_api_retry_seconds(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections to it are refused
    started = time.monotonic()
    with pytest.raises(RemoteAPIError, match=r"gave up after \d+ attempts .*ConnectionRefusedError") as e:
        run_remote_application("doubler", 1, url=f"http://127.0.0.1:{port}", api_retry_seconds=0.5)
    assert 0.45 <= time.monotonic() - started < 2
    assert e.value.status_code == 0


def test_429_waits_for_retry_after_and_one_past_the_deadline_is_not_waited_for(flaky, monkeypatch):
    api, _ = flaky
    api.script[:] = [(429, {"Retry-After": "1"})]
    started = time.monotonic()
    assert run_remote_application("doubler", 1).id == "r7"
    assert time.monotonic() - started >= 0.95
    monkeypatch.setenv("TRELLIS_API_RETRY_SECONDS", "5")
    api.script[:] = [(429, {"Retry-After": "60"})]
    started = time.monotonic()
    with pytest.raises(RemoteAPIError, match="gave up after 1 attempt in .*HTTP 429") as e:
        run_remote_application("doubler", 1)
    assert time.monotonic() - started < 1 and e.value.status_code == 429


def test_output_retries_within_its_timeout(flaky):
    api, _ = flaky
    request = run_remote_application("doubler", 1)
    api.script[:] = [503] * 1000
    started = time.monotonic()
    with pytest.raises(RemoteAPIError, match="GET .*/requests/r7: gave up after"):
        request.output(timeout=1)
    assert 0.9 <= time.monotonic() - started < 3


def test_backoff_doubles_from_0_2_s_to_5_s_with_jitter():
    rng = random.Random(7)
    for attempt, full in [(1, 0.2), (2, 0.4), (3, 0.8), (5, 3.2), (6, 5.0), (40, 5.0)]:
        for _ in range(20):
            assert full / 2 <= backoff(attempt, rng) <= full


def test_which_connection_failures_are_transient():
    for e in [
        ConnectionResetError(104, "Connection reset by peer"),
        ConnectionRefusedError(111, "Connection refused"),
        http.client.RemoteDisconnected("Remote end closed connection without response"),
        TimeoutError("timed out"),
        urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
        urllib.error.URLError(TimeoutError("timed out")),
        urllib.error.URLError(socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")),
    ]:
        assert _transient(e), e
    # A wrong host name, URL or certificate is not fixed by waiting.
    for e in [
        urllib.error.URLError(socket.gaierror(socket.EAI_NONAME, "Name or service not known")),
        urllib.error.URLError("unknown url type: htp"),
        urllib.error.URLError(ssl.SSLCertVerificationError(1, "certificate verify failed")),
    ]:
        assert not _transient(e), e
