from tensorlake.applications import application, function

@function()
async def capitalize(text: str) -> str:
    return text.upper()

@application()
@function()
async def greet(name: str) -> str:
    # Calling an async Tensorlake function `capitalize` returns a coroutine.
    # `await` is available inside async Tensorlake functions `greet`.
    # `await` starts the `capitalize` coroutine and waits for it to complete, returning the result.
    capitalized: str = await capitalize(name)
    return f"Hello, {capitalized}!"
