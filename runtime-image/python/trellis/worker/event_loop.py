"""The one event loop every async call of the worker shares, on its own thread.

A tick every LOOP_TICK seconds shows whether the loop is blocked (an async function doing a
sync wait): heartbeat_ack reports how late the tick is as `loop_stalled`.
"""

import asyncio
import threading
import time

LOOP_TICK = 0.5


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._last_tick = time.monotonic()
        self.loop.call_soon(self._tick)
        threading.Thread(target=self.loop.run_forever, name="trellis-loop", daemon=True).start()

    def _tick(self) -> None:
        self._last_tick = time.monotonic()
        self.loop.call_later(LOOP_TICK, self._tick)

    def stalled_seconds(self, now: float) -> float:
        return round(max(0.0, now - self._last_tick - LOOP_TICK), 3)
