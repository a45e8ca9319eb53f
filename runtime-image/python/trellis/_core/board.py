"""Where call outcomes land, for threads and event loops that wait on them.

An outcome is ("ok", value form) or ("error", error info dict).
"""

import asyncio
import threading
import time
from typing import Any

from ..interface.futures import RETURN_WHEN

Outcome = tuple[str, Any]


def condition_met(outcomes: dict, ids: list[str], return_when: RETURN_WHEN) -> bool:
    if return_when is RETURN_WHEN.FIRST_COMPLETED and outcomes:
        return True
    if return_when is RETURN_WHEN.FIRST_FAILURE and any(o[0] == "error" for o in outcomes.values()):
        return True
    return len(outcomes) == len(set(ids))


class OutcomeBoard:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._outcomes: dict[str, Outcome] = {}
        self._async_waiters: dict[str, list] = {}

    def resolve(self, call_id: str, outcome: Outcome) -> None:
        with self._cond:
            if call_id in self._outcomes:
                return
            self._outcomes[call_id] = outcome
            waiters = self._async_waiters.pop(call_id, [])
            self._cond.notify_all()
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_set_once, fut, outcome)
            except RuntimeError:  # the loop is closed: its waiter is gone
                pass

    def get(self, call_id: str) -> Outcome | None:
        with self._cond:
            return self._outcomes.get(call_id)

    def wait(self, ids: list[str], timeout: float | None, return_when: RETURN_WHEN) -> dict[str, Outcome]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                done = {i: self._outcomes[i] for i in ids if i in self._outcomes}
                if condition_met(done, ids, return_when):
                    return done
                if deadline is None:
                    self._cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return done
                    self._cond.wait(remaining)

    def wait_async(self, call_id: str) -> "asyncio.Future":
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._cond:
            outcome = self._outcomes.get(call_id)
            if outcome is None:
                self._async_waiters.setdefault(call_id, []).append((loop, fut))
        if outcome is not None:
            fut.set_result(outcome)
        return fut

    def forget(self, ids) -> None:
        with self._cond:
            for i in ids:
                self._outcomes.pop(i, None)


def _set_once(fut: "asyncio.Future", outcome: Outcome) -> None:
    if not fut.done():
        fut.set_result(outcome)
