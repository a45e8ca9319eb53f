"""Tensorlake-style applications for the end-to-end test with Tensorlake's own client.

Written against Tensorlake's public API only (`tensorlake.applications`), so the same file runs
under Tensorlake's SDK (where the test deploys it from) and under Trellis' runtime (where it runs).
"""

import time

from pydantic import BaseModel

from tensorlake.applications import File, RequestContext, RequestError, application, function


class LineItem(BaseModel):
    sku: str
    quantity: int
    unit_price: float


class Order(BaseModel):
    customer: str
    items: list[LineItem]


class Receipt(BaseModel):
    customer: str
    skus: list[str]
    total: float


@function()
def line_total(item: LineItem) -> float:
    # A pydantic model crosses from the application's container into this function's.
    return item.quantity * item.unit_price


@application()
@function()
def receipt(order: Order, discount: float = 0.0) -> Receipt:
    totals = line_total.map(order.items)
    return Receipt(customer=order.customer, skus=[i.sku for i in order.items], total=sum(totals) - discount)


@function()
def shout_bytes(content: bytes) -> bytes:
    return content.upper()


@application()
@function()
def shout(doc: File, suffix: str) -> File:
    body = shout_bytes(doc.content) + suffix.encode()
    return File(content=body + f" ({doc.content_type})".encode(), content_type="text/markdown")


@function()
def explode(x: int) -> int:
    raise ValueError(f"cannot handle {x}")


@application()
@function()
def fails(x: int) -> int:
    return explode(x) + 1


@function()
def check(n: int) -> int:
    if n < 0:
        raise RequestError(f"n must be >= 0, got {n}")
    return n


@application()
@function()
def strict(n: int) -> int:
    return check(n) * 10


@application()
@function()
def progress_steps(steps: int) -> str:
    ctx = RequestContext.get()
    for step in range(1, steps + 1):
        # Slow enough that a client watching the progress stream sees each update live.
        time.sleep(1)
        ctx.progress.update(step, steps, f"step {step} of {steps}")
    return f"{steps} steps done"
