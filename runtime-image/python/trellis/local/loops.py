"""Event loops of the local runner's threads: each async call runs as if in its own container."""

import asyncio
import threading

_local = threading.local()


def thread_loop() -> asyncio.AbstractEventLoop:
    """Each pool thread keeps one event loop; an async call owns it while it runs."""
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = _local.loop = asyncio.new_event_loop()
    return loop


def close_thread_loop() -> None:
    loop = getattr(_local, "loop", None)
    if loop is not None and not loop.is_closed():
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Tasks a call left running end with it, as when its container would be recycled."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
