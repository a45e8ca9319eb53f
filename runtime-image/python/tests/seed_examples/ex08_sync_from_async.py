from tensorlake.applications import application, function, Future

@function()
def sync_double(x: int) -> int:
    return x * 2

@application()
@function()
async def my_app(x: int) -> int:
    # Simple await of the sync function call.
    return await sync_double.future(x)


@application()
@function()
async def my_app_tail_call(x: int) -> int:
    # Tail call.
    return sync_double.future(x)

@application()
@function()
async def my_app_background_task(x: int) -> int:
    double_task: asyncio.Task = asyncio.create_task(sync_double.future(x).coroutine())
    return await double_task
