"""Runs one attempt of one call: decode inputs, run user code, classify the outcome.

An attempt outcome is ("ok", form), ("tail", call id) or ("error", error info).
Error info: {"type", "module", "message", "traceback", "function", "call",
"request_error", "reason", "retryable"}.
"""

import functools
import inspect
import threading
import traceback
import typing
from typing import Any

from ..interface.exceptions import FunctionError, RequestError
from . import context, graph, values

_instances: dict[str, Any] = {}
_instances_lock = threading.Lock()


def error_info(exc: BaseException, function: str, call_id: str, reason: str | None = None) -> dict:
    request_error = isinstance(exc, RequestError)
    if reason is None:
        # An uncaught child failure keeps the child's reason (e.g. function_timeout).
        reason = "request_error" if request_error else getattr(exc, "reason", None) if isinstance(
            exc, FunctionError) else "function_error"
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": exc.message if request_error else str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "function": function,
        "call": call_id,
        "request_error": request_error,
        "reason": reason,
        "retryable": not request_error,
    }


def timeout_info(function: str, call_id: str, seconds: float, attempt: int) -> dict:
    return {
        "type": "TimeoutError",
        "module": "trellis",
        "message": f"attempt {attempt} ran longer than the function's timeout of {seconds:g} seconds",
        "traceback": "",
        "function": function,
        "call": call_id,
        "request_error": False,
        "reason": "function_timeout",
        "retryable": True,
    }


def _hints(fn: Any) -> dict:
    cached = fn.__dict__.get("_hints_cache")
    if cached is None:
        try:
            cached = typing.get_type_hints(fn._original_function)
        except Exception:  # unresolvable annotations only lose pydantic rebuilding
            cached = {}
        fn._hints_cache = cached
    return cached


def decode_inputs(fn: Any, args: list, kwargs: dict, boundary: bool = False) -> tuple[list, dict]:
    if boundary:  # a request's root call: the application boundary's rules
        return values.decode_app_inputs(fn, args, kwargs)
    hints = _hints(fn)
    sig = fn._signature()
    params = list(sig.parameters.values()) if sig is not None else []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    out_args = []
    for i, form in enumerate(args):
        name = positional[i].name if i < len(positional) else f"#{i}"
        value = values.decode(form, f"argument '{name}' of {fn._name}()")
        out_args.append(values.rebuild_model(value, hints.get(name)) if "json" in form else value)
    out_kwargs = {}
    for name, form in kwargs.items():
        value = values.decode(form, f"argument '{name}' of {fn._name}()")
        out_kwargs[name] = values.rebuild_model(value, hints.get(name)) if "json" in form else value
    return out_args, out_kwargs


def target_callable(fn: Any):
    cfg = fn._function_config
    if cfg.class_name is None:
        return fn._original_function
    with _instances_lock:
        instance = _instances.get(cfg.class_name)
        if instance is None:
            from ..interface import _registry

            klass = _registry.get_class(cfg.class_name)
            instance = klass()
            klass.__trellis_original_init__(instance)
            _instances[cfg.class_name] = instance
    return functools.partial(fn._original_function, instance)


def _finish(ctx: context.CallContext, fn: Any, result: Any, boundary: bool) -> tuple:
    target = graph.tail_target(ctx, result)
    if target is not None:
        return ("tail", target)
    if boundary:
        return ("ok", values.encode_app_output(fn, result))
    return ("ok", values.encode(result, f"return value of {fn._name}()"))


def run_sync(ctx: context.CallContext, fn: Any, args: list, kwargs: dict, boundary: bool = False) -> tuple:
    token = context.enter(ctx)
    try:
        a, k = decode_inputs(fn, args, kwargs, boundary)
        outcome = _finish(ctx, fn, target_callable(fn)(*a, **k), boundary)
    except BaseException as e:  # noqa: BLE001 - every user failure becomes an outcome
        outcome = ("error", error_info(e, fn._name, ctx.call_id))
    finally:
        context.leave(token)
    return _request_failed(ctx, fn, outcome)


async def run_async(ctx: context.CallContext, fn: Any, args: list, kwargs: dict, boundary: bool = False) -> tuple:
    context.enter(ctx)  # this task's own context copy
    try:
        a, k = decode_inputs(fn, args, kwargs, boundary)
        result = target_callable(fn)(*a, **k)
        if inspect.isawaitable(result) and fn._is_async:
            result = await result
        outcome = _finish(ctx, fn, result, boundary)
    except BaseException as e:  # noqa: BLE001
        outcome = ("error", error_info(e, fn._name, ctx.call_id))
    return _request_failed(ctx, fn, outcome)


def _request_failed(ctx: context.CallContext, fn: Any, outcome: tuple) -> tuple:
    """A child's RequestError that this call waited on fails this call too, with the child's
    message, even if user code caught it (as in Tensorlake, the whole request fails)."""
    seen = ctx.request_error
    if seen is None or (outcome[0] == "error" and outcome[1].get("request_error")):
        return outcome
    info = dict(seen, function=fn._name, call=ctx.call_id, retryable=False, reason="request_error")
    info.setdefault("cause", seen.get("call"))
    return ("error", info)
