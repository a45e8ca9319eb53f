"""The pod worker: runs assigned calls and talks to the sidecar (PROTOCOL.md).

Threads: the main thread reads frames and checks them against the contract (trellis.protocol);
one writer thread sends, except what a pool thread writes itself just before it blocks or ends
(outbox.py); one event loop thread runs every async call
(event_loop.py); sync calls run on pool threads and timeouts come from one timer thread
(attempts.py). What running calls ask of the sidecar is in calls.py.
"""

import os
import platform
import socket
import threading
import time
from typing import Any

from .. import __version__
from .._core import spill as _spill
from ..protocol import MessageError, runtime_error, validate_message
from ..protocol.forms import ATTEMPT, CALL_ID
from . import loader
from .attempts import Attempts
from .calls import STATE_REPLY_SECONDS, PodBackend
from .event_loop import LOOP_TICK, LoopThread
from .log import log
from .outbox import Outbox
from .protocol import PROTOCOL_VERSION, ProtocolError, read_frame

__all__ = ["LOOP_TICK", "STATE_REPLY_SECONDS", "Worker", "log"]


class Worker:
    def __init__(self, sock: socket.socket, functions: dict, concurrency: int, module: str) -> None:
        self.sock = sock
        self.functions = functions
        self.concurrency = concurrency
        self.module = module
        self._lock = threading.RLock()  # one lock for attempts and watches: they change together
        self.outbox = Outbox(sock)
        self.backend = PodBackend(self.outbox.send, self._lock)
        self.loop = LoopThread()
        self.attempts = Attempts(functions, concurrency, module, self.backend, self.loop.loop,
                                 self.outbox.send, self._lock)

    def send(self, message: dict) -> None:
        self.outbox.send(message)

    def flush_and_close(self) -> None:
        self.outbox.flush_and_close()

    def hello(self) -> dict:
        return {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "sdk": __version__,
            "python": platform.python_version(),
            "pid": os.getpid(),
            "module": self.module,
            "concurrency": self.concurrency,
            "functions": [loader.describe(fn) for fn in self.functions.values()],
            "spill": True,  # large values may travel as files (PROTOCOL.md §4); welcome says where
        }

    def drain_on_signal(self, deadline: float) -> None:
        """SIGTERM: behave as if the sidecar sent shutdown with drain."""
        import signal

        signal.signal(signal.SIGTERM, lambda *_: self._on_shutdown(True, deadline))

    # -- the main loop -------------------------------------------------------------
    def serve(self) -> int:
        self.send(self.hello())
        try:
            first = read_frame(self.sock)
            if first is not None:
                validate_message(first, "sidecar")
        except (ProtocolError, MessageError) as e:
            log(f"expected welcome for protocol {PROTOCOL_VERSION}: {e}")
            self.flush_and_close()
            return 4
        if first is None:
            return 2
        if first["type"] == "shutdown":
            self.send({"type": "bye", "unfinished": []})
            self.flush_and_close()
            return 0
        if first["type"] != "welcome" or first["protocol"] != PROTOCOL_VERSION:
            log(f"expected welcome for protocol {PROTOCOL_VERSION}, got {first}")
            self.flush_and_close()
            return 4
        offer = first.get("spill")
        if isinstance(offer, dict):
            try:
                _spill.configure(offer["dir"], offer["threshold"])
            except OSError as e:  # an unusable directory: values stay inline
                log(f"cannot spill values to {offer.get('dir')}: {e}")
        closed = self.outbox.closed
        while not closed.is_set():
            try:
                msg = read_frame(self.sock)
            except OSError:
                msg = None
            except ProtocolError as e:
                log(f"protocol error, closing the connection: {e}")
                self.flush_and_close()
                return 4
            if msg is None:
                if closed.is_set():
                    return 0
                log("the sidecar closed the connection")
                return 2
            try:
                validate_message(msg, "sidecar")
            except MessageError as e:
                self._reject(msg, e)
                continue
            try:
                self._dispatch(msg)
            except Exception as e:  # noqa: BLE001 - one bad message must not kill the worker
                log(f"cannot handle {msg.get('type')}: {type(e).__name__}: {e}")
        return 0

    def _dispatch(self, msg: dict) -> None:
        kind = msg["type"]
        if kind == "assign":
            self.attempts.assign(msg)
        elif kind == "resolved":
            outcome = ("ok", msg["output"]) if "output" in msg else ("error", msg["error"])
            self.backend.on_resolved(msg["id"], outcome)
        elif kind == "reply":
            self.backend.on_reply(msg)
        elif kind == "heartbeat":
            self.send(self._heartbeat_ack(msg["seq"]))
        elif kind == "cancel":
            self.attempts.cancel(msg["call"])
        elif kind == "shutdown":
            self._on_shutdown(bool(msg.get("drain", True)), float(msg.get("deadline", 30)))
        # welcome again: nothing to do; other types never pass validate_message

    def _reject(self, msg: dict, error: MessageError) -> None:
        """An invalid message is logged and ignored, but one that names what it answers fails that
        (PROTOCOL.md §1), so no attempt or wait hangs on it."""
        log(f"ignoring an invalid message: {error}")
        kind = msg.get("type")
        text = f"invalid {kind} message from the sidecar: {error}"
        if kind == "assign" and _valid(CALL_ID, msg.get("call")) and _valid(ATTEMPT, msg.get("attempt")):
            call, attempt = msg["call"], int(msg["attempt"])
            with self._lock:
                if self.attempts.has(call, attempt):
                    return  # a repeat of an attempt that will send its own final message
            function = msg.get("function") if isinstance(msg.get("function"), str) else None
            info = runtime_error("ProtocolError", text, function, call, reason="internal", retryable=False)
            self.send({"type": "failure", "call": call, "attempt": attempt, "error": info})
        elif kind == "resolved" and _valid(CALL_ID, msg.get("id")):
            info = runtime_error("InternalError", text, None, msg["id"], reason="internal", retryable=False)
            self.backend.on_resolved(msg["id"], ("error", info))
        elif kind == "reply" and isinstance(msg.get("rid"), str):
            self.backend.on_reply({"rid": msg["rid"], "ok": False, "error": text})

    def _heartbeat_ack(self, seq: Any) -> dict:
        now = time.monotonic()
        running, queued, abandoned = self.attempts.snapshot(now)
        return {"type": "heartbeat_ack", "seq": seq, "running": running, "queued": queued,
                "capacity": self.concurrency, "abandoned": abandoned,
                "loop_stalled": self.loop.stalled_seconds(now)}

    def _on_shutdown(self, drain: bool, deadline: float) -> None:
        self.attempts.stop_taking_work(drain)

        def finish() -> None:
            end = time.monotonic() + deadline
            while time.monotonic() < end:
                with self._lock:
                    if not self.attempts.running:
                        break
                self.outbox.closed.wait(0.05)  # polling for drained calls, bounded by the deadline
            with self._lock:
                unfinished = [r.call for r in self.attempts.running.values()]
            self.send({"type": "bye", "unfinished": unfinished})
            self.outbox.closed.set()
            self.flush_and_close()

        threading.Thread(target=finish, name="trellis-drain", daemon=True).start()


def _valid(check, value) -> bool:
    try:
        check(value, "")
        return True
    except MessageError:
        return False
