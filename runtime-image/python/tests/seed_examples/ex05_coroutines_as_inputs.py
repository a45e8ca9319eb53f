from tensorlake.applications import application, function

@function()
async def double(x: int) -> int:
    return x * 2

@function()
async def add(a: int, b: int) -> int:
    return a + b

@application()
@function()
async def my_app(x: int) -> int:
    a = double(x)
    b = double(x + 1)
    # Pass coroutines as function call arguments. Tensorlake runs both in parallel,
    # waits for them to complete, and uses their results as the arguments for `add`.
    return await add(a, b)
