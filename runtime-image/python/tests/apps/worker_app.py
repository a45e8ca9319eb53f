"""Functions the protocol tests run in `python -m trellis.worker`."""

import asyncio
import time

from tensorlake.applications import (
    Future,
    RequestContext,
    RequestError,
    Retries,
    application,
    function,
)


@function()
def double(x: int) -> int:
    return x * 2


@function()
def add(a: int, b: int) -> int:
    return a + b


@application(tags={"team": "demo"}, retries=Retries(max_retries=2))
@function(description="sums doubled pair", timeout=30, max_concurrency=4, min_containers=0, max_containers=3)
def pair_sum(x: int) -> int:
    # two independent children, then a sync wait on both
    a = double.future(x).run()
    b = double.future(x + 1).run()
    return add(a.result(), b.result())


@function()
def deps(x: int) -> int:
    # a call whose inputs are other calls: one batch of three specs
    return add.future(double.future(x), double.future(x)).result()


@function()
def boom(x: int) -> int:
    raise ValueError(f"bad {x}")


@function()
def reject(x: int) -> int:
    raise RequestError(f"request rejected: {x}")


@function()
def tail(x: int):
    return double.future(x)


@function()
async def adouble(x: int) -> int:
    return x * 2


@function()
async def atail(x: int):
    return adouble(x)


@function()
def mapper(n: int) -> list:
    return double.map(list(range(n)))


@function()
async def areduce(items: list) -> int:
    return await add.future.reduce(items, 0)


@function()
def catches(x: int) -> str:
    try:
        boom(x)
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"
    return "no error"


@function()
def stateful(x: int) -> int:
    ctx = RequestContext.get()
    ctx.state.set("seen", x)
    ctx.progress.update(1, 2, "half")
    ctx.metrics.counter("calls")
    return ctx.state.get("seen") + 1


@function(timeout=0.2)
async def slow(x: int) -> int:
    await asyncio.sleep(30)
    return x


@function(timeout=1)
def nap_timeout_1(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@function(timeout=10)
def nap_timeout_10(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@function()
def waits_first(x: int) -> list:
    futures = [double.future(i).run() for i in range(3)]
    done, not_done = Future.wait(futures, return_when=__import__("trellis").RETURN_WHEN.FIRST_COMPLETED)
    return [len(done), len(not_done)]


@function()
def countdown(n: int):
    if n == 0:
        return "liftoff"
    return countdown.future(n - 1)


_flaky_attempts = []


@function(retries=Retries(max_retries=2, initial_delay=0.01))
def flaky(x: int) -> int:
    _flaky_attempts.append(x)
    if len(_flaky_attempts) < 3:
        raise ConnectionError("transient")
    return x


@function()
def uses_flaky(x: int) -> list:
    return [flaky(x), len(_flaky_attempts)]


@function()
def tuple_pairs(n: int) -> list:
    return [(i, str(i)) for i in range(n)]


@function()
def first_of(pair: tuple) -> int:
    return pair[0]


@function()
def map_over_pickled_items(n: int) -> list:
    # the items are pickled tuples inside a list form: the orchestrator splits them unseen
    return first_of.map(tuple_pairs.future(n))


@function()
async def blocks_loop(x: int) -> int:
    # a sync wait inside an async function blocks the worker's event loop (documented)
    return double.future(x).result()


@function()
def who(x: int) -> str:
    return RequestContext.get().headers["X-User"]
