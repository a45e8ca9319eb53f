"""The sync <-> async interop matrix: every way a parent can start and consume a child."""

import asyncio

import pytest

from tensorlake.applications import FunctionError, application, function, run_local_application


@function()
def sdouble(x: int) -> int:
    return x * 2


@function()
async def adouble(x: int) -> int:
    return x * 2


@function()
def sfail(x: int) -> int:
    raise ValueError("sync child failed")


@function()
async def afail(x: int) -> int:
    raise ValueError("async child failed")


CASES = {}


def case(expected):
    def register(fn):
        app = application()(function()(fn))
        CASES[fn.__name__] = (app, expected)
        return app

    return register


# -- sync parents ----------------------------------------------------------------
@case(10)
def s_calls_sync_directly(x):
    return sdouble(x)


@case(10)
def s_future_result_of_sync(x):
    return sdouble.future(x).result()


@case(10)
def s_future_result_of_async(x):
    return adouble.future(x).result()


@case(10)
def s_run_then_result_of_async(x):
    return adouble.future(x).run().result()


@case([10, 12])
def s_map_sync(x):
    return sdouble.map([x, x + 1])


@case([10, 12])
def s_future_map_async(x):
    return adouble.future.map([x, x + 1]).result()


@case(10)
def s_tail_future_of_sync(x):
    return sdouble.future(x)


@case(10)
def s_tail_future_of_async(x):
    return adouble.future(x)


@case(10)
def s_tail_coroutine_of_async(x):
    return adouble(x)


@case("FunctionError")
def s_catches_async_failure(x):
    try:
        afail.future(x).result()
    except FunctionError as e:
        return type(e).__name__


# -- async parents ---------------------------------------------------------------
@case(10)
async def a_awaits_async_call(x):
    return await adouble(x)


@case(10)
async def a_calls_sync_directly(x):
    return sdouble(x)  # blocks the event loop, as documented


@case(10)
async def a_awaits_future_of_sync(x):
    return await sdouble.future(x)


@case(10)
async def a_awaits_future_of_async(x):
    return await adouble.future(x)


@case(10)
async def a_awaits_future_coroutine(x):
    return await sdouble.future(x).coroutine()


@case(10)
async def a_create_task_async(x):
    task = asyncio.create_task(adouble(x))
    return await task


@case(10)
async def a_create_task_sync_future(x):
    return await asyncio.create_task(sdouble.future(x).coroutine())


@case(10)
async def a_ensure_future(x):
    return await asyncio.ensure_future(adouble(x))


@case([10, 12, 14])
async def a_gather_mixed(x):
    return list(await asyncio.gather(adouble(x), sdouble.future(x + 1), adouble.future(x + 2).coroutine()))


@case(["ValueError('async child failed')", 10, "sync child failed"])
async def a_gather_return_exceptions(x):
    results = await asyncio.gather(afail(x), adouble(x), sfail.future(x), return_exceptions=True)
    first, second, third = results
    assert isinstance(first, FunctionError) and isinstance(third, FunctionError)
    return [f"{first.error_type}('{first.error_message}')", second, third.error_message]


@case([10, 12])
async def a_awaits_map_of_async(x):
    return await adouble.map([x, x + 1])


@case([10, 12])
async def a_map_of_sync_blocks(x):
    return sdouble.map([x, x + 1])


@case(22)
async def a_awaits_future_map_of_sync(x):
    return sum(await sdouble.future.map([x, x + 1]))


@case(10)
async def a_tail_coroutine(x):
    return adouble(x)


@case(10)
async def a_tail_future(x):
    return sdouble.future(x)


@case(10)
async def a_tail_task(x):
    return asyncio.create_task(adouble(x))


@case(10)
async def a_tail_task_already_running(x):
    task = asyncio.create_task(adouble(x))
    await asyncio.sleep(0)  # let the task start its call
    return task


@case("FunctionError: function 'afail' failed: ValueError: async child failed")
async def a_catches_async_failure(x):
    try:
        await afail(x)
    except FunctionError as e:
        return f"{type(e).__name__}: {e}"


@case("FunctionError: function 'sfail' failed: ValueError: sync child failed")
async def a_catches_sync_failure_from_future(x):
    try:
        await sfail.future(x)
    except FunctionError as e:
        return f"{type(e).__name__}: {e}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_interop(name):
    app, expected = CASES[name]
    assert run_local_application(app, 5).output() == expected


def test_sync_function_gets_coroutine_from_async_function_call():
    @application()
    @function()
    def peek(x: int) -> str:
        coro = adouble(x)
        kind = type(coro).__name__
        coro.close()
        return kind

    assert run_local_application(peek, 1).output() == "coroutine"


def test_coroutines_and_futures_start_nothing_until_awaited_or_run():
    from trellis.local import LocalRunner

    @application()
    @function()
    async def lazy(x: int) -> int:
        coro = adouble(x)
        future = sdouble.future(x)
        coro.close()
        del future
        return x

    runner = LocalRunner(lazy)
    assert runner.run([3], {}).output() == 3
    assert list(runner._calls) == [runner.request_id]
