"""The worker's sending side: a writer thread, and writes by a thread that is about to stop.

Consecutive `calls` batches of one attempt go out as one frame (a map of thousands of items is
one message). A thread that is about to block on what it sent (a sync call waiting for its
children) or whose attempt just ended (a sync attempt's result) writes everything queued
before its message and the message itself, instead of waking the writer thread: one thread
hand-off fewer on every call's path. The queue is taken only by the holder of the write lock,
so frames go out in the order they were sent. An output too large for a frame still ends its
attempt: it becomes a failure.
"""

import collections
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
        # _mu guards _queue (held briefly: a plain send never waits for a write); _wlock is held
        # while a batch is taken from the queue and written, so batches go out in queue order.
        # Lock order: _wlock, then _mu.
        self._mu = threading.Lock()
        self._wlock = threading.Lock()
        self._ready = threading.Condition(self._mu)
        self._queue: collections.deque = collections.deque()
        self._failed = False
        self._writer = threading.Thread(target=self._write_loop, name="trellis-writer", daemon=True)
        self._writer.start()

    def send(self, message: dict, flush: bool = False) -> None:
        """flush: write it (and what is queued before it) on this thread, e.g. before blocking.
        When it returns, the message is written (or the socket has failed)."""
        with self._mu:
            self._queue.append(message)
            if not flush:
                self._ready.notify()
                return
        # A writer holding the lock now may take this message with its batch: written either way.
        with self._wlock:
            self._write_batch(self._take())

    def _take(self) -> list:
        """Everything queued up to the stop marker; the marker stays queued (_wlock held)."""
        with self._mu:
            batch = []
            while self._queue and self._queue[0] is not _STOP:
                batch.append(self._queue.popleft())
            if self._queue:
                self._ready.notify()  # the stop marker is the writer thread's
            return batch

    def _write_loop(self) -> None:
        while True:
            with self._mu:
                while not self._queue:
                    self._ready.wait()
                if self._queue[0] is _STOP:
                    return
            with self._wlock:
                if not self._write_batch(self._take()):
                    return

    def _write_batch(self, batch: list) -> bool:
        """Writes the batch in order, merging consecutive calls of one attempt (caller holds
        _wlock). False once the socket failed."""
        i = 0
        while i < len(batch):
            msg = batch[i]
            i += 1
            if self._failed:
                return False
            if msg["type"] == "calls":
                merged = None
                while i < len(batch) and batch[i]["type"] == "calls" and (
                    batch[i]["call"], batch[i]["attempt"]) == (msg["call"], msg["attempt"]):
                    if merged is None:
                        merged = dict(msg, calls=list(msg["calls"]))
                    merged["calls"].extend(batch[i]["calls"])
                    i += 1
                msg = merged or msg
            self._write(msg)
        return not self._failed

    def _write(self, msg: dict) -> None:
        try:
            try:
                frame = encode_frame(msg)
            except ProtocolError as e:
                log(f"cannot send {msg['type']}: {e}")
                if msg["type"] != "result":
                    return
                # the attempt still needs its one final message
                info = runtime_error("SerializationError", f"the output is too large to send: {e}", None,
                                     msg["call"], reason="function_error", retryable=False)
                frame = encode_frame({"type": "failure", "call": msg["call"], "attempt": msg["attempt"],
                                      "error": info})
            self.sock.sendall(frame)
        except OSError as e:
            log(f"cannot send {msg.get('type')}: {e}")
            self._failed = True
            self.closed.set()

    def flush_and_close(self) -> None:
        with self._mu:
            self._queue.append(_STOP)
            self._ready.notify()
        self._writer.join(timeout=10)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
