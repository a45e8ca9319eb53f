from tensorlake.applications import application, function

@function()
def double(x: int) -> int:
    return x * 2

@application()
@function()
async def my_app(x: int) -> int:
    return double.future(x)
