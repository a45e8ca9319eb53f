from tensorlake.applications import application, function

@function()
async def double(x: int) -> int:
    return x * 2

@application()
@function()
async def my_app(x: int) -> int:
    # Returns a coroutine as a tail call. The function completes immediately
    # and Tensorlake runs the coroutine in the background.
    return double(x)
