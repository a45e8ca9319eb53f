"""run_remote_application against a stand-in of the v1 invoke routes on 127.0.0.1 (the shapes
named in trellis/remote.py); the operator's real API is tested by the operator's suites."""

import json
import pickle
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tensorlake.applications import File, RequestError, RequestFailed, SDKUsageError, run_remote_application


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
