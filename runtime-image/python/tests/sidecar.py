"""A test stand-in for the TypeScript sidecar: speaks PROTOCOL.md to a real worker process."""

import os
import select
import socket
import subprocess
import sys
import tempfile
import time

from trellis.protocol import validate_message
from trellis.worker.protocol import PROTOCOL_VERSION, encode_frame, read_frame

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_ROOT = os.path.dirname(HERE)


class Sidecar:
    def __init__(self, module: str = "apps.worker_app", concurrency: int = 4, extra: list | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="trellis-sock-")
        self.path = os.path.join(self.dir, "worker.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(1)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([PYTHON_ROOT, HERE]))
        cmd = [sys.executable, "-m", "trellis.worker", "--socket", self.path, "--module", module,
               "--concurrency", str(concurrency)] + (extra or [])
        self.proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
        self.server.settimeout(20)
        self.conn, _ = self.server.accept()
        self.backlog: list[dict] = []

    def send(self, message: dict, check: bool = True) -> None:
        """check=False sends a message that breaks the contract on purpose."""
        if check:
            validate_message(message, "sidecar")
        self.conn.sendall(encode_frame(message))

    def _read(self) -> dict | None:
        msg = read_frame(self.conn)
        if msg is not None:
            validate_message(msg, "worker")  # every test checks what the worker sends against the contract
        return msg

    def recv(self, timeout: float = 10.0) -> dict:
        if self.backlog:
            return self.backlog.pop(0)
        ready, _, _ = select.select([self.conn], [], [], timeout)
        if not ready:
            raise TimeoutError("no message from the worker")
        msg = self._read()
        if msg is None:
            raise EOFError("the worker closed the connection")
        return msg

    def expect(self, type_: str, timeout: float = 10.0, **match) -> dict:
        """The next message of this type (matching fields); others are kept for later."""
        deadline = time.monotonic() + timeout
        skipped = []
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {type_} {match} from the worker; saw {skipped}")
                if self.backlog:
                    msg = self.backlog.pop(0)
                else:
                    ready, _, _ = select.select([self.conn], [], [], remaining)
                    if not ready:
                        continue
                    msg = self._read()
                    if msg is None:
                        raise EOFError(f"worker closed while waiting for {type_}; saw {skipped}")
                if msg["type"] == type_ and all(msg.get(k) == v for k, v in match.items()):
                    return msg
                skipped.append(msg)
        finally:
            self.backlog[:0] = skipped

    def handshake(self) -> dict:
        hello = self.expect("hello")
        self.send({"type": "welcome", "protocol": PROTOCOL_VERSION})
        return hello

    def close(self) -> int:
        try:
            self.send({"type": "shutdown", "drain": False, "deadline": 1})
        except OSError:
            pass
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc.stderr.close()
        self.conn.close()
        self.server.close()
        os.unlink(self.path)
        os.rmdir(self.dir)
        return code
