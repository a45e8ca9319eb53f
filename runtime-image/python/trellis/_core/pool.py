"""Threads for running calls, and a timer thread for delays, retries and timeouts."""

import heapq
import itertools
import threading
import time
from typing import Callable


class ThreadPool:
    """Hands each job to an idle thread or starts a new one: a call blocked waiting on its
    children never starves them (the cluster scales out the same way). Idle threads exit."""

    def __init__(self, name: str, idle_seconds: float = 5.0, on_thread_exit: Callable[[], None] | None = None) -> None:
        self._name = name
        self._on_thread_exit = on_thread_exit
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._idle: list["_Worker"] = []
        self._count = itertools.count()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is not None:
            worker.give(job)
        else:
            _Worker(self, job, f"{self._name}-{next(self._count)}").start()

    def _park(self, worker: "_Worker") -> None:
        with self._lock:
            self._idle.append(worker)

    def _try_retire(self, worker: "_Worker") -> bool:
        with self._lock:
            if worker in self._idle:
                self._idle.remove(worker)
                return True
            return False  # claimed by submit() concurrently: a job is on its way


class _Worker(threading.Thread):
    def __init__(self, pool: ThreadPool, job, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._pool = pool
        self._job = job
        self._ready = threading.Event()

    def give(self, job) -> None:
        self._job = job
        self._ready.set()

    def run(self) -> None:
        while True:
            job, self._job = self._job, None
            job()
            self._ready.clear()
            self._pool._park(self)
            if not self._ready.wait(self._pool._idle_seconds):
                if self._pool._try_retire(self):
                    if self._pool._on_thread_exit is not None:
                        self._pool._on_thread_exit()
                    return
                self._ready.wait()


class Timers:
    """One thread running callbacks at monotonic times; callbacks must be quick."""

    def __init__(self, name: str) -> None:
        self._cond = threading.Condition()
        self._heap: list = []
        self._seq = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def at(self, when: float, fn: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), fn))
            self._cond.notify()

    def after(self, seconds: float, fn: Callable[[], None]) -> None:
        self.at(time.monotonic() + seconds, fn)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    self._cond.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                if self._closed:
                    return
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:  # a timer callback must not kill the timer thread
                import traceback

                traceback.print_exc()
