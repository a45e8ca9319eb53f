"""What running calls use in a pod (the Backend): child calls, waits, request state, progress
and metrics, all as messages to the sidecar.

A call is watched once however many attempts wait on it; the sidecar's `resolved` lands on
the outcome board, and a watch no attempt needs any more is forgotten when its last waiter ends.
"""

import itertools
import threading
from typing import Callable

from .._core import context, values
from .._core.board import OutcomeBoard
from ..interface.exceptions import InternalError

# The sidecar retries a state request until an operator answers; this bounds a failover (a lost
# node: its replica's Lease expires, then the Service stops sending to it) plus a margin.
STATE_REPLY_SECONDS = 180.0


class PodBackend(context.Backend):
    def __init__(self, send: Callable[..., None], lock: threading.RLock) -> None:
        self.send = send
        self.lock = lock
        self.board = OutcomeBoard()
        self._watchers: dict[str, set] = {}
        self._replies: dict[str, list] = {}
        self._rids = itertools.count(1)

    # -- the sidecar's answers -------------------------------------------------------------
    def on_resolved(self, call_id: str, outcome: tuple) -> None:
        if outcome[0] == "ok" and isinstance(outcome[1], dict) and "spill" in outcome[1]:
            # Read the file once (and remove it): several attempts may take this outcome.
            try:
                outcome = ("ok", values.unspill(outcome[1], f"output of {call_id}"))
            except Exception as e:  # noqa: BLE001 - the waiters get it as the call's failure
                outcome = ("error", {"type": "InternalError", "message": str(e), "call": call_id,
                                     "reason": "internal", "retryable": False})
        self.board.resolve(call_id, outcome)

    def on_reply(self, msg: dict) -> None:
        with self.lock:
            slot = self._replies.get(msg["rid"])
        if slot is not None:
            slot.append(msg)
            slot[0].set()

    def forget(self, run) -> None:
        """An attempt ended: drop the watches only it needed (lock held)."""
        forget = []
        for cid in run.watched:
            watchers = self._watchers.get(cid)
            if watchers is not None:
                watchers.discard(run)
                if not watchers:
                    del self._watchers[cid]
                    forget.append(cid)
        self.board.forget(forget)

    # -- Backend -----------------------------------------------------------------------------
    def create_calls(self, ctx, specs: list[dict]) -> None:
        clean = [{k: v for k, v in s.items() if not k.startswith("_")} for s in specs]
        self.send({"type": "calls", "call": ctx.call_id, "attempt": ctx.attempt, "calls": clean})

    def _watch(self, ctx, ids: list[str], flush: bool = False) -> None:
        run = getattr(ctx, "worker_attempt", None)
        new = []
        with self.lock:
            for cid in ids:
                watchers = self._watchers.setdefault(cid, set())
                if not watchers and self.board.get(cid) is None:
                    new.append(cid)
                if run is not None:
                    watchers.add(run)
                    run.watched.add(cid)
        if new:
            self.send({"type": "watch", "call": ctx.call_id, "attempt": ctx.attempt, "ids": new}, flush)

    def wait(self, ctx, ids, timeout, return_when) -> dict:
        # This thread blocks next: it writes the calls and the watch itself (no hand-off).
        self._watch(ctx, ids, flush=True)
        return self.board.wait(ids, timeout, return_when)

    def wait_async(self, ctx, call_id: str):
        self._watch(ctx, [call_id])
        return self.board.wait_async(call_id)

    def _request(self, message: dict) -> dict:
        rid = f"w{next(self._rids)}"
        slot: list = [threading.Event()]
        with self.lock:
            self._replies[rid] = slot
        self.send(dict(message, rid=rid))
        try:
            if not slot[0].wait(STATE_REPLY_SECONDS):
                raise InternalError(f"the sidecar did not answer {message['type']} within {STATE_REPLY_SECONDS}s")
        finally:
            with self.lock:
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
