from tensorlake.applications import application, function

@function()
async def double(x: int) -> int:
    return x * 2

@function()
async def add(a: int, b: int) -> int:
    return a + b

@application()
@function()
async def process_numbers(numbers: list[int]) -> int:
    # Calling .map() on an async function returns a coroutine.
    # `await` runs the map operation and blocks until all items are processed.
    doubled: list[int] = await double.map(numbers)
    # Calling .reduce() on an async function also returns a coroutine.
    total: int = await add.reduce(doubled)
    return total
