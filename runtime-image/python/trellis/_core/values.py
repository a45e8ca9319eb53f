"""Values on the wire and between calls.

Forms: {"json": v} (the value is exactly JSON: dict with str keys, list, valid
UTF-8 str, int within +-(2**53-1), finite float, bool, None), {"pickle": base64} (tagged pickle, anything
else), {"list": [form, ...]} (a list that is not exactly JSON, e.g. a map's output), {"call": id} (a reference to
another call's output), {"blob": ref} (a large value the sidecar resolves).
Encoding snapshots the value and decoding builds a fresh object, so a mutation
never leaks between calls or retries.
"""

import asyncio
import base64
import json
import math
import pickle
from collections.abc import Coroutine
from typing import Any

from ..interface.exceptions import DeserializationError, SerializationError
from ..interface.futures import Future

WRAPPED_RULE = (
    "futures, coroutines and tasks may be passed only directly as a call argument or returned "
    "directly from a function (a tail call), never inside another object such as a list, dict or "
    "dataclass; only the items list given to map()/reduce() may hold them"
)


class _Wrapped(Exception):
    def __init__(self, obj: Any):
        self.obj = obj


def _handle_kind(obj: Any) -> str | None:
    from ..interface.function import Function, FunctionFutureFactory

    if isinstance(obj, Future):
        return "a Future"
    if isinstance(obj, asyncio.Task):
        return "an asyncio.Task"
    if isinstance(obj, Coroutine):
        return "a coroutine"
    if isinstance(obj, (Function, FunctionFutureFactory)):
        return "a function object"
    return None


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> None:
        if type(obj) in _PLAIN:
            return None
        if _handle_kind(obj) is not None:
            raise _Wrapped(obj)
        return None


MAX_SAFE_INT = 2**53 - 1
_PLAIN = {str, int, float, bool, type(None), bytes, list, dict, tuple, set}


def is_json_exact(value: Any) -> bool:
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is bool or v is None:
            continue
        if t is int:
            # JavaScript peers (sidecar, operator) parse numbers as doubles.
            if -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                continue
            return False
        if t is str:
            if v.isascii():
                continue
            try:
                v.encode("utf-8")  # lone surrogates are not valid UTF-8 JSON
            except UnicodeEncodeError:
                return False
            continue
        if t is float:
            if not math.isfinite(v):
                return False
            continue
        if t is list:
            stack.extend(v)
            continue
        if t is dict:
            for k, item in v.items():
                if type(k) is not str:
                    return False
                stack.append(item)
            continue
        return False
    return True


def encode(value: Any, what: str) -> dict:
    """Encodes a value; `what` names it in errors ("argument 'x' of f()")."""
    try:
        if is_json_exact(value):
            return {"json": json.loads(json.dumps(value))}
    except RecursionError:
        pass
    kind = _handle_kind(value)
    if kind is not None:
        raise SerializationError(f"{what} is {kind}, which cannot be serialized here: {WRAPPED_RULE}")
    if type(value) is list:
        # A list stays splittable by the operator (map over a call's output) even when its
        # items need pickle.
        items = []
        for i, item in enumerate(value):
            if _handle_kind(item) is not None:
                raise SerializationError(f"{what} holds {_handle_kind(item)} inside a list: {WRAPPED_RULE}")
            items.append(encode(item, f"{what}[{i}]"))
        return {"list": items}
    try:
        import io

        buf = io.BytesIO()
        _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except _Wrapped as w:
        raise SerializationError(
            f"{what} holds {_handle_kind(w.obj)} inside a {type(value).__name__}: {WRAPPED_RULE}"
        ) from None
    except Exception as e:
        raise SerializationError(f"{what} cannot be serialized: {type(e).__name__}: {e}") from e
    return {"pickle": base64.b64encode(buf.getvalue()).decode("ascii")}


def decode(form: Any, what: str) -> Any:
    if not isinstance(form, dict) or len(form) != 1:
        raise DeserializationError(f"{what}: malformed value {form!r}")
    (tag, payload), = form.items()
    try:
        if tag == "json":
            return json.loads(json.dumps(payload))
        if tag == "pickle":
            return pickle.loads(base64.b64decode(payload))
        if tag == "list":
            return [decode(item, f"{what}[{i}]") for i, item in enumerate(payload)]
    except DeserializationError:
        raise
    except Exception as e:
        raise DeserializationError(f"{what} cannot be deserialized: {type(e).__name__}: {e}") from e
    if tag in ("call", "blob"):
        raise DeserializationError(f"{what}: unresolved {tag} reference {payload!r} reached the function")
    raise DeserializationError(f"{what}: unknown value form {tag!r}")


def ref_of(form: Any) -> str | None:
    if isinstance(form, dict) and len(form) == 1 and "call" in form:
        return form["call"]
    return None


# -- the application boundary (request input and output) ---------------------------
def _pydantic_dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump) and hasattr(type(value), "model_validate"):
        return dump(mode="json")
    return None


def encode_app(value: Any, what: str) -> dict:
    """JSON for request inputs and outputs: JSON values and pydantic models; else tagged pickle."""
    dumped = _pydantic_dump(value)
    if dumped is not None:
        return {"json": dumped}
    return encode(value, what)


def apply_hint(value: Any, hint: Any) -> Any:
    """Rebuilds a pydantic model from its JSON form when the annotation asks for one."""
    validate = getattr(hint, "model_validate", None)
    if isinstance(hint, type) and callable(validate) and isinstance(value, dict):
        try:
            return validate(value)
        except Exception as e:
            raise DeserializationError(f"value does not match {hint.__name__}: {e}") from e
    return value
