// The Python applications the bench runs. Each root times its own loop with perf_counter and
// returns the figures, so request start-up and polling are not in them.

/** 200 calls one after another: each `step(v)` blocks until the previous one returned. */
export const CHAIN_SOURCE = `
import time
from tensorlake.applications import application, function

@function()
def step(x: int) -> int:
    return x + 1

@application()
@function()
def chain(n: int) -> dict:
    t0 = time.perf_counter()
    v = 0
    for _ in range(n):
        v = step(v)
    loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    p = 0
    for _ in range(n):
        p = step.__wrapped__(p)
    pure = time.perf_counter() - t0
    return {"value": v, "loop_s": loop, "pure_s": pure}
`;

/**
 * Dependent calls handed to the operator at once: link k takes link k-1's future as its input,
 * so the operator (not the root) starts each link when its input is persisted as Succeeded.
 * Each link notes the wall clock as its code starts and returns (the pods share the machine's
 * clock): the time between steps as the functions see it.
 */
export const DEPENDENT_SOURCE = `
import time
from tensorlake.applications import application, function

@function()
def link(x: dict) -> dict:
    start = time.time()
    return {"v": x["v"] + 1, "start": start, "end": time.time()}

@application()
@function()
def dependents(n: int) -> dict:
    t0 = time.perf_counter()
    f = link.future({"v": 0})
    for _ in range(n - 1):
        f = link.future(f)
    f.run()
    v = f.result()["v"]
    return {"value": v, "loop_s": time.perf_counter() - t0}
`;

/** One map over n items. */
export const MAP_SOURCE = `
import time
from tensorlake.applications import application, function

@function()
def double(x: int) -> int:
    return x * 2

@application()
@function()
def fanout(n: int) -> dict:
    t0 = time.perf_counter()
    out = double.map(list(range(n)))
    loop = time.perf_counter() - t0
    assert out == [2 * i for i in range(n)], "map output out of order"
    return {"value": len(out), "loop_s": loop}
`;

/**
 * A tail chain: the root returns a future of link n-1 and link k returns a future of link k-1 (a
 * tail call: the link completes at once, Delegated, and the operator runs the future), down to link
 * 0, which returns a value. Each link is a call of its own: nothing recurses in Python. The value,
 * n, counts the links that ran.
 */
export const TAIL_SOURCE = `
from tensorlake.applications import application, function

@function()
def link(k: int, acc: int) -> int:
    if k == 0:
        return acc + 1
    return link.future(k - 1, acc + 1)

@application()
@function()
def tail_chain(n: int) -> int:
    return link.future(n - 1, 0)
`;
