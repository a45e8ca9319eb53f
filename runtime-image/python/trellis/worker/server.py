"""The pod worker: runs assigned calls and talks to the sidecar (PROTOCOL.md).

Threads: the main thread reads frames; one writer thread sends them (merging
consecutive child-call batches of the same attempt); one event loop thread runs
every async call; sync calls run on pool threads. Timeouts come from one timer thread.
"""

import asyncio
import itertools
import os
import platform
import queue
import socket
import sys
import threading
import time
from typing import Any

from .. import __version__
from .._core import context, execute
from .._core.board import OutcomeBoard
from .._core.pool import ThreadPool, Timers
from ..interface.exceptions import InternalError
from . import loader
from .protocol import PROTOCOL_VERSION, ProtocolError, encode_frame, read_frame

STATE_REPLY_SECONDS = 60.0
_STOP = {"type": "__stop__"}
LOOP_TICK = 0.5


def log(message: str) -> None:
    print(f"trellis-worker: {message}", file=sys.stderr, flush=True)


class _Attempt:
    __slots__ = ("call", "attempt", "function", "started", "done", "task", "sync", "watched", "ctx")

    def __init__(self, call: str, attempt: int, function: Any, sync: bool) -> None:
        self.call = call
        self.attempt = attempt
        self.function = function
        self.started = time.monotonic()
        self.done = False
        self.task = None
        self.sync = sync
        self.watched: set[str] = set()


class Worker(context.Backend):
    def __init__(self, sock: socket.socket, functions: dict, concurrency: int, module: str) -> None:
        self.sock = sock
        self.functions = functions
        self.concurrency = concurrency
        self.module = module
        self.board = OutcomeBoard()
        self._lock = threading.RLock()
        self._out: "queue.SimpleQueue[dict]" = queue.SimpleQueue()
        self._running: dict[tuple[str, int], _Attempt] = {}
        self._queued: list[dict] = []
        self._watchers: dict[str, set] = {}
        self._replies: dict[str, list] = {}
        self._rids = itertools.count(1)
        self._abandoned = 0
        self._draining = False
        self._closed = threading.Event()
        self._pool = ThreadPool("trellis-call", idle_seconds=60.0)
        self._timers = Timers("trellis-timers")
        self.loop = asyncio.new_event_loop()
        self._loop_tick = time.monotonic()
        self.loop.call_soon(self._tick)
        threading.Thread(target=self.loop.run_forever, name="trellis-loop", daemon=True).start()
        self._writer = threading.Thread(target=self._write_loop, name="trellis-writer", daemon=True)
        self._writer.start()

    # -- sending -------------------------------------------------------------------
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
                    info = _info("SerializationError", f"the output is too large to send: {e}", None,
                                 msg["call"], reason="function_error", retryable=False)
                    frame = encode_frame({"type": "failure", "call": msg["call"], "attempt": msg["attempt"],
                                          "error": info})
                self.sock.sendall(frame)
            except OSError as e:
                log(f"cannot send {msg.get('type')}: {e}")
                self._closed.set()
                return

    def flush_and_close(self) -> None:
        self._out.put(_STOP)
        self._writer.join(timeout=10)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # -- the main loop -------------------------------------------------------------
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
        }

    def drain_on_signal(self, deadline: float) -> None:
        """SIGTERM: behave as if the sidecar sent shutdown with drain."""
        import signal

        signal.signal(signal.SIGTERM, lambda *_: self._on_shutdown(True, deadline))

    def serve(self) -> int:
        self.send(self.hello())
        first = read_frame(self.sock)
        if first is None:
            return 2
        if first["type"] == "shutdown":
            self.send({"type": "bye", "unfinished": []})
            self.flush_and_close()
            return 0
        if first["type"] != "welcome" or first.get("protocol") != PROTOCOL_VERSION:
            log(f"expected welcome for protocol {PROTOCOL_VERSION}, got {first}")
            self.flush_and_close()
            return 4
        while not self._closed.is_set():
            try:
                msg = read_frame(self.sock)
            except OSError:
                msg = None
            if msg is None:
                if self._closed.is_set():
                    return 0
                log("the sidecar closed the connection")
                return 2
            try:
                self._dispatch(msg)
            except Exception as e:  # noqa: BLE001 - one bad message must not kill the worker
                log(f"cannot handle {msg.get('type')}: {type(e).__name__}: {e}")
        return 0

    def _dispatch(self, msg: dict) -> None:
        kind = msg["type"]
        if kind == "assign":
            self._on_assign(msg)
        elif kind == "resolved":
            outcome = ("ok", msg["output"]) if "output" in msg else ("error", msg["error"])
            self.board.resolve(msg["id"], outcome)
        elif kind == "reply":
            with self._lock:
                slot = self._replies.get(msg["rid"])
            if slot is not None:
                slot.append(msg)
                slot[0].set()
        elif kind == "heartbeat":
            self.send(self._heartbeat_ack(msg.get("seq")))
        elif kind == "cancel":
            self._on_cancel(msg["call"])
        elif kind == "shutdown":
            self._on_shutdown(bool(msg.get("drain", True)), float(msg.get("deadline", 30)))
        else:
            log(f"ignoring unknown message type {kind!r}")

    def _tick(self) -> None:
        """Runs on the event loop every LOOP_TICK seconds: a late tick means the loop is blocked."""
        self._loop_tick = time.monotonic()
        self.loop.call_later(LOOP_TICK, self._tick)

    def _heartbeat_ack(self, seq: Any) -> dict:
        now = time.monotonic()
        with self._lock:
            running = [
                {"call": a.call, "attempt": a.attempt, "function": a.function._name,
                 "seconds": round(now - a.started, 3)}
                for a in self._running.values()
            ]
            return {"type": "heartbeat_ack", "seq": seq, "running": running, "queued": len(self._queued),
                    "capacity": self.concurrency, "abandoned": self._abandoned,
                    "loop_stalled": round(max(0.0, now - self._loop_tick - LOOP_TICK), 3)}

    # -- running calls ---------------------------------------------------------------
    def _on_assign(self, msg: dict) -> None:
        fn = self.functions.get(msg.get("function"))
        call, attempt = msg["call"], int(msg.get("attempt", 1))
        if fn is None:
            info = _info("SDKUsageError", f"function {msg.get('function')!r} is not defined in {self.module}",
                         msg.get("function"), call, reason="unknown_function", retryable=False)
            self.send({"type": "failure", "call": call, "attempt": attempt, "error": info})
            return
        with self._lock:
            if (call, attempt) in self._running or any(
                m["call"] == call and int(m.get("attempt", 1)) == attempt for m in self._queued
            ):
                log(f"ignoring a repeated assign of {call} attempt {attempt}")
                return
            if self._draining:
                info = _info("InternalError", "the worker is shutting down", fn._name, call,
                             reason="worker_shutdown", retryable=True)
                self.send({"type": "failure", "call": call, "attempt": attempt, "error": info})
                return
            if len(self._running) >= self.concurrency:
                self._queued.append(msg)
                return
            self._start(msg, fn)

    def _start(self, msg: dict, fn: Any) -> None:
        run = _Attempt(msg["call"], int(msg.get("attempt", 1)), fn, sync=not fn._is_async)
        self._running[(run.call, run.attempt)] = run
        ctx = context.CallContext(request_id=msg["request"], call_id=run.call, attempt=run.attempt,
                                  function=fn, backend=self, headers=msg.get("headers") or {})
        ctx.worker_attempt = run
        run.ctx = ctx
        args, kwargs = msg.get("args") or [], msg.get("kwargs") or {}
        boundary = run.call == msg["request"]
        timeout = fn._function_config.timeout
        self._timers.after(timeout, lambda: self._on_timeout(run, timeout))
        if fn._is_async:
            async def go() -> None:
                run.task = asyncio.current_task()
                if run.done:
                    return
                self._finish(run, await execute.run_async(ctx, fn, args, kwargs, boundary))

            self.loop.call_soon_threadsafe(lambda: self.loop.create_task(go()))
        else:
            self._pool.submit(lambda: self._finish(run, execute.run_sync(ctx, fn, args, kwargs, boundary)))

    def _end(self, run: _Attempt) -> None:
        """Bookkeeping when an attempt is over (lock held); starts a queued call."""
        run.done = True
        self._running.pop((run.call, run.attempt), None)
        forget = []
        for cid in run.watched:
            watchers = self._watchers.get(cid)
            if watchers is not None:
                watchers.discard(run)
                if not watchers:
                    del self._watchers[cid]
                    forget.append(cid)
        self.board.forget(forget)
        while self._queued and len(self._running) < self.concurrency and not self._draining:
            nxt = self._queued.pop(0)
            self._start(nxt, self.functions[nxt["function"]])

    def _finish(self, run: _Attempt, outcome: tuple) -> None:
        with self._lock:
            if run.done:
                if run.sync:
                    self._abandoned = max(0, self._abandoned - 1)
                return
            self._end(run)
            kind, payload = outcome
            base = {"call": run.call, "attempt": run.attempt}
            if kind == "ok":
                self.send({"type": "result", **base, "output": payload})
            elif kind == "tail":
                self.send({"type": "tail", **base, "target": payload})
            else:
                self.send({"type": "failure", **base, "error": payload})

    def _stop(self, run: _Attempt) -> None:
        """Ends an attempt that is still running: cancel it, or abandon its thread (lock held)."""
        self._end(run)
        if run.sync:
            self._abandoned += 1
        elif run.task is not None:
            self.loop.call_soon_threadsafe(run.task.cancel)

    def _on_timeout(self, run: _Attempt, timeout: float) -> None:
        with self._lock:
            if run.done:
                return
            self._stop(run)
            info = execute.timeout_info(run.function._name, run.call, timeout, run.attempt)
            self.send({"type": "failure", "call": run.call, "attempt": run.attempt, "error": info})

    def _on_cancel(self, call: str) -> None:
        with self._lock:
            for run in [r for r in self._running.values() if r.call == call]:
                self._stop(run)
                self.send({"type": "cancelled", "call": run.call, "attempt": run.attempt})
            for msg in [m for m in self._queued if m["call"] == call]:
                self._queued.remove(msg)
                self.send({"type": "cancelled", "call": call, "attempt": int(msg.get("attempt", 1))})

    def _on_shutdown(self, drain: bool, deadline: float) -> None:
        with self._lock:
            self._draining = True
            for msg in self._queued:
                info = _info("InternalError", "the worker is shutting down", msg.get("function"), msg["call"],
                             reason="worker_shutdown", retryable=True)
                self.send({"type": "failure", "call": msg["call"], "attempt": int(msg.get("attempt", 1)),
                           "error": info})
            self._queued.clear()
            if not drain:
                for run in list(self._running.values()):
                    self._stop(run)
                    self.send({"type": "cancelled", "call": run.call, "attempt": run.attempt})

        def finish() -> None:
            end = time.monotonic() + deadline
            while time.monotonic() < end:
                with self._lock:
                    if not self._running:
                        break
                self._closed.wait(0.05)  # polling for drained calls, bounded by the deadline
            with self._lock:
                unfinished = [r.call for r in self._running.values()]
            self.send({"type": "bye", "unfinished": unfinished})
            self._closed.set()
            self.flush_and_close()

        threading.Thread(target=finish, name="trellis-drain", daemon=True).start()

    # -- Backend: what running calls use ----------------------------------------------
    def create_calls(self, ctx, specs: list[dict]) -> None:
        clean = [{k: v for k, v in s.items() if not k.startswith("_")} for s in specs]
        self.send({"type": "calls", "call": ctx.call_id, "attempt": ctx.attempt, "calls": clean})

    def _watch(self, ctx, ids: list[str]) -> None:
        run = getattr(ctx, "worker_attempt", None)
        new = []
        with self._lock:
            for cid in ids:
                watchers = self._watchers.setdefault(cid, set())
                if not watchers and self.board.get(cid) is None:
                    new.append(cid)
                if run is not None:
                    watchers.add(run)
                    run.watched.add(cid)
        if new:
            self.send({"type": "watch", "call": ctx.call_id, "attempt": ctx.attempt, "ids": new})

    def wait(self, ctx, ids, timeout, return_when) -> dict:
        self._watch(ctx, ids)
        return self.board.wait(ids, timeout, return_when)

    def wait_async(self, ctx, call_id: str):
        self._watch(ctx, [call_id])
        return self.board.wait_async(call_id)

    def _request(self, message: dict) -> dict:
        rid = f"w{next(self._rids)}"
        slot: list = [threading.Event()]
        with self._lock:
            self._replies[rid] = slot
        self.send(dict(message, rid=rid))
        try:
            if not slot[0].wait(STATE_REPLY_SECONDS):
                raise InternalError(f"the sidecar did not answer {message['type']} within {STATE_REPLY_SECONDS}s")
        finally:
            with self._lock:
                self._replies.pop(rid, None)
        reply = slot[1]
        if not reply.get("ok", False):
            raise InternalError(f"{message['type']} failed: {reply.get('error', 'unknown error')}")
        return reply

    def state_get(self, ctx, key: str):
        reply = self._request({"type": "state_get", "call": ctx.call_id, "request": ctx.request_id, "key": key})
        return reply.get("value")

    def state_set(self, ctx, key: str, value: dict) -> None:
        self._request({"type": "state_set", "call": ctx.call_id, "request": ctx.request_id, "key": key,
                       "value": value})

    def progress(self, ctx, current, total, message, attributes) -> None:
        self.send({"type": "progress", "call": ctx.call_id, "attempt": ctx.attempt, "current": current,
                   "total": total, "message": message, "attributes": attributes})

    def metric(self, ctx, kind: str, name: str, value) -> None:
        self.send({"type": "metric", "call": ctx.call_id, "attempt": ctx.attempt, "kind": kind,
                   "name": name, "value": value})


def _info(type_: str, message: str, function: Any, call: str, *, reason: str, retryable: bool) -> dict:
    return {"type": type_, "module": "trellis", "message": message, "traceback": "", "function": function,
            "call": call, "request_error": False, "reason": reason, "retryable": retryable}
