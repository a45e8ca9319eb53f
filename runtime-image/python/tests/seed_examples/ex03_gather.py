import asyncio
from tensorlake.applications import application, function

@function()
async def capitalize(text: str) -> str:
    return text.upper()

@function()
async def make_joke(name: str) -> str:
    return f"Why did {name} cross the road? To get to the other side!"

@application()
@function()
async def greet(name: str) -> str:
    # Start both function calls in parallel.
    capitalized, joke = await asyncio.gather(
        capitalize(name),
        make_joke(name),
    )
    return f"Hello, {capitalized}! {joke}"
