# Durability on the cluster: every function counts its executions in the request's state, so a
# test can tell a re-attached child from one that ran again.
import time

from tensorlake.applications import RequestContext, application, function


def bump(name: str) -> int:
    ctx = RequestContext.get()
    runs = ctx.state.get(name, 0) + 1
    ctx.state.set(name, runs)
    return runs


@function()
def quick(x: int) -> int:
    bump("quick_runs")
    return x + 1


@function()
def slow(x: int, seconds: float) -> int:
    bump("slow_runs")
    time.sleep(seconds)
    return x * 2


@application()
@function()
def pipeline(x: int, seconds: float) -> dict:
    bump("root_runs")
    a = quick(x)
    b = slow(a, seconds)
    state = RequestContext.get().state
    return {
        "value": b,
        "root_runs": state.get("root_runs"),
        "quick_runs": state.get("quick_runs"),
        "slow_runs": state.get("slow_runs"),
    }


@function()
def tick(x: int) -> int:
    bump(f"tick.{x}")
    time.sleep(0.5)
    return x * 3


@application()
@function()
def fan(n: int) -> dict:
    out = tick.map(list(range(n)))
    state = RequestContext.get().state
    return {"value": out, "runs": [state.get(f"tick.{x}", 0) for x in range(n)]}


@function()
def hop(k: int, n: int) -> dict:
    bump(f"hop.{k}")
    if k > 0:
        time.sleep(0.05)
        return hop.future(k - 1, n)
    state = RequestContext.get().state
    return {"value": n, "runs": [state.get(f"hop.{j}", 0) for j in range(n)]}


@application()
@function()
def hops(n: int) -> dict:
    return hop.future(n - 1, n)
