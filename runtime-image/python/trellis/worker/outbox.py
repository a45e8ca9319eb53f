"""The worker's sending side: one writer thread owns the socket's write end.

Consecutive `calls` batches of one attempt go out as one frame (a map of thousands of items is
one message). An output too large for a frame still ends its attempt: it becomes a failure.
"""

import queue
import socket
import threading

from ..protocol import runtime_error
from .log import log
from .protocol import ProtocolError, encode_frame

_STOP = {"type": "__stop__"}


class Outbox:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closed = threading.Event()  # the connection is gone, or the worker is done with it
        self._out: "queue.SimpleQueue[dict]" = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="trellis-writer", daemon=True)
        self._writer.start()

    def send(self, message: dict) -> None:
        self._out.put(message)

    def _write_loop(self) -> None:
        held = None
        while True:
            msg = held if held is not None else self._out.get()
            held = None
            if msg is _STOP:
                return
            while msg["type"] == "calls":
                try:
                    nxt = self._out.get_nowait()
                except queue.Empty:
                    break
                if nxt is not _STOP and nxt["type"] == "calls" and (nxt["call"], nxt["attempt"]) == (
                    msg["call"], msg["attempt"]
                ):
                    msg["calls"].extend(nxt["calls"])
                else:
                    held = nxt
                    break
            try:
                try:
                    frame = encode_frame(msg)
                except ProtocolError as e:
                    log(f"cannot send {msg['type']}: {e}")
                    if msg["type"] != "result":
                        continue
                    # the attempt still needs its one final message
                    info = runtime_error("SerializationError", f"the output is too large to send: {e}", None,
                                         msg["call"], reason="function_error", retryable=False)
                    frame = encode_frame({"type": "failure", "call": msg["call"], "attempt": msg["attempt"],
                                          "error": info})
                self.sock.sendall(frame)
            except OSError as e:
                log(f"cannot send {msg.get('type')}: {e}")
                self.closed.set()
                return

    def flush_and_close(self) -> None:
        self._out.put(_STOP)
        self._writer.join(timeout=10)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
