# Failure semantics on the cluster: user errors, catching a child's failure, retries, timeouts.
import time

from tensorlake.applications import FunctionError, RequestContext, Retries, application, function


@function()
def boom(x: int) -> int:
    raise ValueError(f"bad {x}")


@application()
@function()
def fails(x: int) -> int:
    return boom(x)


@application()
@function()
def catches(x: int) -> str:
    try:
        boom(x)
    except FunctionError as e:
        return f"caught {type(e).__name__}: {e}"
    return "not raised"


@function(retries=Retries(max_retries=3, initial_delay=0.5, max_delay=2.0, delay_multiplier=2.0))
def flaky(x: int) -> int:
    ctx = RequestContext.get()
    runs = ctx.state.get("flaky_runs", 0) + 1
    ctx.state.set("flaky_runs", runs)
    ctx.state.set(f"flaky_at_{runs}", time.time())
    if runs < 3:
        raise RuntimeError(f"attempt {runs} fails")
    return x * 10


@application()
@function()
def retrying(x: int) -> dict:
    value = flaky(x)
    ctx = RequestContext.get()
    runs = ctx.state.get("flaky_runs")
    gaps = [ctx.state.get(f"flaky_at_{i + 1}") - ctx.state.get(f"flaky_at_{i}") for i in range(1, runs)]
    return {"value": value, "runs": runs, "gaps": gaps}


@function(timeout=2)
def slow(x: int) -> int:
    time.sleep(60)
    return x


@application()
@function()
def times_out(x: int) -> int:
    return slow(x)
