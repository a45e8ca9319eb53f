"""Turns started futures into call specs, and call outcomes back into future results.

A spec (what runtimes create; see PROTOCOL.md "Call specs"):
  {"id", "kind": "call", "function", "args": [form], "kwargs": {name: form}, ["delay"]}
  {"id", "kind": "map", "function", "items": [form] | {"call": id}}
  {"id", "kind": "reduce", "function", "items": [form] | {"call": id}, ["initial": form]}
In-process, specs also carry "_fn" (the Function object); runtimes drop keys that
start with "_" before sending a spec anywhere.
"""

import asyncio
from collections.abc import Coroutine
from typing import Any

from ..interface import _hooks
from ..interface.exceptions import (
    DeserializationError,
    FunctionError,
    RequestError,
    SDKUsageError,
    SerializationError,
    TensorlakeError,
    TimeoutError,
)
from ..interface.futures import (
    _MISSING,
    FunctionCallFuture,
    Future,
    MapFuture,
    ReduceFuture,
    _unwrap_future,
)
from . import context, values
from .board import condition_met


def _param_names(function: Any, args: list, kwargs: dict) -> tuple[list[str], dict]:
    sig = function._signature()
    names = [f"#{i}" for i in range(len(args))]
    if sig is not None:
        params = [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        for i in range(min(len(args), len(params))):
            names[i] = params[i].name
    return names, {k: k for k in kwargs}


def _input_form(ctx: context.CallContext, value: Any, what: str):
    """The form of one input; yields a future it needs the id of (add_future sends the id back)."""
    handle = _unwrap_future(value)
    if isinstance(handle, Future):
        if isinstance(value, Coroutine) and not handle._started:
            value.close()  # it will never be stepped; the call stands in for it
        return {"call": (yield handle)}
    if isinstance(value, (Coroutine, asyncio.Task)):
        raise SerializationError(
            f"{what} is a coroutine or task that is not a call of a Trellis function: await it and pass "
            "its value (only Trellis futures, coroutines and tasks can be passed as pending inputs)"
        )
    return values.encode(value, what)


def _spec_of(ctx: context.CallContext, future: Future, specs: list):
    """Builds one future's spec; yields each future among its inputs and receives its id."""
    future._started = True
    fn = future._function
    name = fn._name
    if isinstance(future, FunctionCallFuture):
        arg_names, _ = _param_names(fn, future._args, future._kwargs)
        args = []
        for i, a in enumerate(future._args):
            args.append((yield from _input_form(ctx, a, f"argument '{arg_names[i]}' of {name}()")))
        kwargs = {}
        for k, v in future._kwargs.items():
            kwargs[k] = yield from _input_form(ctx, v, f"argument '{k}' of {name}()")
        spec = {"kind": "call", "function": name, "args": args, "kwargs": kwargs}
    else:
        op = "map" if isinstance(future, MapFuture) else "reduce"
        items = future._items
        if isinstance(items, list):
            items_form: Any = []
            for i, item in enumerate(items):
                items_form.append((yield from _input_form(ctx, item, f"item {i} of {name}.{op}()")))
        else:
            items_form = yield from _input_form(ctx, items, f"items of {name}.{op}()")
        spec = {"kind": op, "function": name, "items": items_form}
        if isinstance(future, ReduceFuture) and future._initial is not _MISSING:
            spec["initial"] = yield from _input_form(ctx, future._initial, f"initial value of {name}.reduce()")
    future._id = ctx.next_child_id()
    spec["id"] = future._id
    if future._start_delay:
        spec["delay"] = future._start_delay
    spec["_fn"] = fn
    specs.append(spec)
    return future._id


def add_future(ctx: context.CallContext, future: Future, specs: list) -> str:
    """Gives the future its durable id and appends its spec (after its inputs').

    Depth-first with an explicit stack, not recursion: a chain of futures thousands deep (each
    the input of the next) is as ordinary as a long loop, and Python's stack is ~1,000 frames.
    """
    if future._started:
        return future._id
    stack = [_spec_of(ctx, future, specs)]
    sent: Any = None
    while True:
        try:
            needed = stack[-1].send(sent)
        except StopIteration as done:
            stack.pop()
            if not stack:
                return done.value
            sent = done.value
            continue
        if needed._started:
            sent = needed._id
        else:
            stack.append(_spec_of(ctx, needed, specs))
            sent = None


def error_from_info(info: dict) -> TensorlakeError:
    if info.get("request_error"):
        return RequestError(info.get("message", ""))
    name = info.get("function") or "?"
    if info.get("reason") == "function_timeout":
        text = f"function '{name}' timed out: {info.get('message', '')}"
    else:
        text = f"function '{name}' failed: {info.get('type', 'Error')}: {info.get('message', '')}"
    return FunctionError(
        text,
        function_name=info.get("function"),
        call_id=info.get("call"),
        error_type=info.get("type"),
        error_message=info.get("message"),
        traceback=info.get("traceback"),
        reason=info.get("reason", "function_error"),
    )


def apply_outcome(future: Future, outcome: tuple, ctx: "context.CallContext | None" = None) -> None:
    kind, payload = outcome
    if kind == "error" and payload.get("request_error") and ctx is not None and ctx.request_error is None:
        ctx.request_error = payload
    if kind == "ok":
        try:
            future._set_result(values.decode(payload, f"output of {future._describe()}"))
        except DeserializationError as e:
            future._set_exception(e)
    else:
        future._set_exception(error_from_info(payload))


class CoreRuntime:
    """The interface's runtime hooks, delegating to the running call's backend."""

    def run_future(self, future: Future) -> None:
        context.check_runtime_process()
        ctx = context.current()
        specs: list = []
        add_future(ctx, future, specs)
        ctx.backend.create_calls(ctx, specs)

    def wait_futures(self, futures: list, timeout, return_when) -> tuple[list, list]:
        context.check_runtime_process()
        ctx = context.current()
        done_now = {f._id: ("error" if f._exception is not None else "ok", None) for f in futures if f.done()}
        ids = [f._id for f in futures]
        # Pending futures are waited on with the same rule: none of the done ones satisfied it.
        if not (done_now and condition_met(done_now, ids, return_when)):
            pending = [f for f in futures if not f.done()]
            if pending:
                outcomes = ctx.backend.wait(ctx, [f._id for f in pending], timeout, return_when)
                for f in pending:
                    if f._id in outcomes and not f.done():
                        apply_outcome(f, outcomes[f._id], ctx)
                if timeout is not None and any(not f.done() for f in futures):
                    now = {f._id: ("error" if f._exception is not None else "ok", None)
                           for f in futures if f.done()}
                    if not (now and condition_met(now, ids, return_when)):
                        # The wait timed out: as in Tensorlake, the futures still running are
                        # done now, with a TimeoutError (the calls themselves carry on).
                        for f in futures:
                            if not f.done():
                                f._set_exception(TimeoutError())
        return [f for f in futures if f.done()], [f for f in futures if not f.done()]

    def await_future(self, future: Future):
        context.check_runtime_process()
        ctx = context.current()
        outcome = yield from ctx.backend.wait_async(ctx, future._id).__await__()
        if not future.done():
            apply_outcome(future, outcome, ctx)

    def request_context(self):
        return context.RuntimeRequestContext(context.current())


def install() -> None:
    _hooks.install_runtime(CoreRuntime())


def tail_target(ctx: context.CallContext, result: Any) -> str | None:
    """If a function returned a future/coroutine/task, creates it and returns its id."""
    handle = _unwrap_future(result)
    if not isinstance(handle, Future):
        if isinstance(result, (Coroutine, asyncio.Task)):
            if isinstance(result, Coroutine):
                result.close()
            raise SDKUsageError(
                "a function returned a coroutine or task that is not a call of a Trellis function; "
                "await it and return its value instead"
            )
        return None
    if isinstance(result, asyncio.Task):
        result.cancel()  # the call itself carries on; the task was only waiting for it
    elif handle._started:
        raise SDKUsageError(  # Tensorlake's text
            f"A tail call Future {handle} returned from function '{ctx.function._name}' is already running, "
            "a tail call Future should not be started."
        )
    elif isinstance(result, Coroutine):
        result.close()
    specs: list = []
    target = add_future(ctx, handle, specs)
    if specs:
        ctx.backend.create_calls(ctx, specs)
    return target
