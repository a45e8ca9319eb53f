# Scale on the cluster: a deep chain of tail calls and a wide map.
from tensorlake.applications import application, function


@function()
def countdown(n: int, acc: int) -> int:
    if n == 0:
        return acc
    # A tail call: this call completes now; its output is the next link's.
    return countdown.future(n - 1, acc + n)


@application()
@function()
def chain(n: int) -> int:
    return countdown.future(n, 0)


@function(max_concurrency=16)
def square(x: int) -> int:
    return x * x


@application()
@function()
def squares(n: int) -> int:
    return sum(square.map(list(range(n))))
