# The fault-injection and chaos workload: a ~55-call graph (a plain call, a map over 20 items, a
# reduce over its outputs, a tail-call chain of 10, a final plain call). Every execution counts
# itself in the request's state under a key of its own, e.g. "square.3" (no two calls share a
# key, so concurrent calls never race on a counter); the root returns the counts with the value,
# so a test can tell a call re-attached after a crash from one that ran again.
import time

from tensorlake.applications import RequestContext, application, function

ITEMS = 20
DEPTH = 10


def bump(key: str) -> None:
    state = RequestContext.get().state
    state.set(key, state.get(key, 0) + 1)


@function()
def prepare(n: int) -> list:
    bump("prepare")
    return list(range(1, n + 1))


@function()
def square(x: int) -> int:
    bump(f"square.{x}")
    time.sleep(0.2)
    return x * x


@function()
def add(acc: int, y: int) -> int:
    # y is a distinct square per step: the step's own key.
    bump(f"add.{y}")
    return acc + y


@function()
def countdown(n: int, acc: int) -> int:
    bump(f"countdown.{n}")
    time.sleep(0.1)
    if n == 0:
        return acc
    return countdown.future(n - 1, acc + n)


@function()
def finish(total: int, chain: int, seed: int) -> int:
    bump("finish")
    return total * 1000 + chain + seed


def run_keys(n: int, depth: int) -> list:
    keys = ["graph", "prepare", "finish"]
    keys += [f"square.{x}" for x in range(1, n + 1)]
    # The reduce starts from 0, so every square is one add step.
    keys += [f"add.{x * x}" for x in range(1, n + 1)]
    keys += [f"countdown.{d}" for d in range(depth + 1)]
    return keys


# The root lives as long as its request: under the chaos suite's kills (the leader every ~50 s,
# ~15 s without one each time) a request took up to 440 s on the 2-core machine, past the default
# 300 s timeout of one attempt. The suites test durability, not timeouts.
@application()
@function(timeout=1800)
def graph(seed: int) -> dict:
    bump("graph")
    items = prepare(ITEMS)
    squares = square.map(items)
    total = add.reduce(squares, 0)
    chain = countdown(DEPTH, 0)
    value = finish(total, chain, seed)
    state = RequestContext.get().state
    return {"value": value, "runs": {k: state.get(k, 0) for k in run_keys(ITEMS, DEPTH)}}
