import asyncio
from tensorlake.applications import application, function

@function()
async def double(x: int) -> int:
    return x * 2

@application()
@function()
async def my_app(x: int) -> int:
    coroutine = double(x)
    # Starts the coroutine in the background and returns an asyncio.Task.
    task: asyncio.Task = asyncio.create_task(coroutine)
    # Do something else and then await the task to get the result.
    return await task
