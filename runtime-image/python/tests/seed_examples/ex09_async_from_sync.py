from tensorlake.applications import application, function

@function()
async def async_double(x: int) -> int:
    return x * 2

@function()
async def async_add(a: int, b: int) -> int:
    return a + b

@application()
@function()
def my_app(x: int) -> int:
    doubled: int = async_double.future(x).result()
    return async_add.future(x, doubled).result()
