"""Values on the wire and between calls.

Forms: {"json": v} (the value is exactly JSON: dict with str keys, list, valid
UTF-8 str, int within +-(2**53-1), finite float, bool, None), {"pickle": base64} (tagged pickle, anything
else), {"list": [form, ...]} (a list that is not exactly JSON, e.g. a map's output), {"raw": {"contentType",
"data": base64}} (bytes with a MIME type: a request input or output that is not JSON, such as a File),
{"call": id} (a reference to another call's output), {"blob": ref} (a large value the sidecar resolves).
Encoding snapshots the value and decoding builds a fresh object, so a mutation
never leaks between calls or retries.
"""

import asyncio
import base64
import json
import math
import pickle
import re
from collections.abc import Coroutine
from typing import Any

from ..interface.exceptions import DeserializationError, SerializationError
from ..interface.futures import Future
from . import spill as _spill
from .spill import b64_size

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
    """Encodes a value; `what` names it in errors ("argument 'x' of f()"). In a worker that
    spills (spill.py), a value over the threshold becomes a {"spill"} file instead."""
    spill = _spill.active()
    try:
        if is_json_exact(value):
            if spill is None:
                return {"json": json.loads(json.dumps(value))}
            text = json.dumps(value)
            if len(text) <= spill.threshold:
                return {"json": json.loads(text)}
            return spill.document({"json": json.loads(text)})
    except RecursionError:
        pass
    if spill is not None and _is_file(value) and b64_size(len(value.content)) > spill.threshold:
        # A large File crosses as its bytes (decoded back into a File), not as a pickle.
        return spill.raw(value.content, value.content_type)
    kind = _handle_kind(value)
    if kind == "a function object":
        raise _function_error(value)
    if kind is not None:
        raise SerializationError(f"{what} is {kind}, which cannot be serialized here: {WRAPPED_RULE}")
    if type(value) is list:
        # A list stays splittable by the operator (map over a call's output) even when its
        # items need pickle.
        items = []
        for i, item in enumerate(value):
            if _handle_kind(item) == "a function object":
                raise _function_error(item)
            if _handle_kind(item) is not None:
                raise SerializationError(f"{what} holds {_handle_kind(item)} inside a list: {WRAPPED_RULE}")
            items.append(encode(item, f"{what}[{i}]"))
        return {"list": items}
    try:
        import io

        buf = io.BytesIO()
        _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except _Wrapped as w:
        if _handle_kind(w.obj) == "a function object":
            raise _function_error(w.obj) from None
        raise SerializationError(
            f"{what} holds {_handle_kind(w.obj)} inside a {type(value).__name__}: {WRAPPED_RULE}"
        ) from None
    except Exception as e:
        raise SerializationError(f"{what} cannot be serialized: {type(e).__name__}: {e}") from e
    if spill is not None and b64_size(buf.getbuffer().nbytes) > spill.threshold:
        return spill.pickled(buf.getbuffer())
    return {"pickle": base64.b64encode(buf.getvalue()).decode("ascii")}


def _is_file(value: Any) -> bool:
    from ..interface.file import File

    return type(value) is File


def unspill(form: Any, what: str) -> Any:
    """A {"spill"} form read back (and its file removed) as the form it holds; a raw or pickle
    one keeps its bytes decoded: {"raw": (bytes, type)} / {"pickle": bytes}. Others pass."""
    if not (isinstance(form, dict) and len(form) == 1 and "spill" in form):
        return form
    try:
        kind, payload = _spill.read(form["spill"])
    except Exception as e:
        raise DeserializationError(f"{what}: cannot read spilled value: {type(e).__name__}: {e}") from e
    if kind == "raw":
        return {"raw": payload}
    if kind == "pickle":
        return {"pickle": payload}
    return payload


def _function_error(obj: Any) -> SerializationError:
    from ..interface.function import _pickle_message

    # Tensorlake's text: users compare it.
    return SerializationError(f"Failed to serialize data with pickle serializer: {_pickle_message(obj)}")


def decode(form: Any, what: str) -> Any:
    form = unspill(form, what)
    if not isinstance(form, dict) or len(form) != 1:
        raise DeserializationError(f"{what}: malformed value {form!r}")
    (tag, payload), = form.items()
    try:
        if tag == "json":
            return json.loads(json.dumps(payload))
        if tag == "pickle":
            return pickle.loads(payload if isinstance(payload, (bytes, bytearray)) else base64.b64decode(payload))
        if tag == "list":
            return [decode(item, f"{what}[{i}]") for i, item in enumerate(payload)]
        if tag == "raw":
            from ..interface.file import File

            return File(*raw_parts(payload, what))
    except DeserializationError:
        raise
    except Exception as e:
        raise DeserializationError(f"{what} cannot be deserialized: {type(e).__name__}: {e}") from e
    if tag in ("call", "blob"):
        raise DeserializationError(f"{what}: unresolved {tag} reference {payload!r} reached the function")
    raise DeserializationError(f"{what}: unknown value form {tag!r}")


RAW_DEFAULT_TYPE = "application/octet-stream"
# The FunctionCall schema's rule for a raw value's type (protocol/src/api/v1alpha1/common.ts).
_MIME_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?").fullmatch


def raw_form(content: bytes, content_type: str | None) -> dict:
    """Bytes with a MIME type: how a File or HttpBody crosses the application boundary. A type
    the API would refuse (none, or not type/subtype) is sent as application/octet-stream."""
    if not content_type or len(content_type) > 255 or not _MIME_TYPE(content_type):
        content_type = RAW_DEFAULT_TYPE
    spill = _spill.active()
    if spill is not None and b64_size(len(content)) > spill.threshold:
        return spill.raw(content, content_type)
    return {"raw": {"contentType": content_type, "data": base64.b64encode(content).decode("ascii")}}


def raw_parts(payload: Any, what: str) -> tuple[bytes, str]:
    """(content, content type) of a {"raw": payload} form (or an unspilled one's tuple)."""
    if isinstance(payload, tuple):
        return payload[0], payload[1]
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), str) \
            or not isinstance(payload.get("contentType"), str) or not payload["contentType"]:
        raise DeserializationError(f"{what}: malformed raw value (needs contentType and base64 data)")
    try:
        return base64.b64decode(payload["data"], validate=True), payload["contentType"]
    except ValueError as e:
        raise DeserializationError(f"{what}: raw value data is not base64: {e}") from e


def ref_of(form: Any) -> str | None:
    if isinstance(form, dict) and len(form) == 1 and "call" in form:
        return form["call"]
    return None


# -- the application boundary (request input and output) ---------------------------
# A request's inputs and its output cross the boundary as JSON converted by the application's
# type hints (a missing hint is Any), as Tensorlake does: with pydantic importable through a
# pydantic TypeAdapter (models, sets, tuples, dict keys...), else by the standard-library rules
# in _std_convert. File and HttpBody values cross as {"raw"} forms (their bytes and content type),
# so the HTTP API can serve them as they are; as in Tensorlake, a parameter annotated File or
# HttpBody takes any input's bytes, and any other parameter reads a raw input's bytes as JSON.


class AppInput:
    """A request input already converted at the boundary (what encode_app passes through)."""

    __slots__ = ("form",)

    def __init__(self, form: dict) -> None:
        self.form = form


def _pydantic_dump(value: Any) -> Any:
    """A pydantic model's JSON form (None for anything else)."""
    dump = getattr(value, "model_dump", None)
    if callable(dump) and hasattr(type(value), "model_validate"):
        return dump(mode="json")
    return None


def _pydantic() -> Any:
    try:
        import pydantic
    except Exception:  # the core never requires pydantic
        return None
    return pydantic if hasattr(pydantic, "TypeAdapter") else None


_adapters: dict = {}


def _adapter(pydantic: Any, hint: Any) -> Any:
    try:
        adapter = _adapters.get(hint)
    except TypeError:  # unhashable hint
        return pydantic.TypeAdapter(hint)
    if adapter is None:
        adapter = _adapters[hint] = pydantic.TypeAdapter(hint)
    return adapter


def _raw_body(value: Any, hint: Any) -> bool:
    from ..interface.file import File
    from ..interface.http import HttpBody

    if isinstance(value, (File, HttpBody)):
        return True
    return is_raw_hint(hint)


def is_raw_hint(hint: Any) -> bool:
    """Whether a parameter annotated `hint` takes a request body's bytes (File or HttpBody)."""
    from ..interface.file import File
    from ..interface.http import HttpBody

    return isinstance(hint, type) and issubclass(hint, (File, HttpBody))


def app_hints(fn: Any) -> tuple[list, dict]:
    """(parameters callers pass, in order; {name or "return": type hint}) of an application."""
    cached = fn.__dict__.get("_app_hints_cache")
    if cached is not None:
        return cached
    import inspect
    import typing

    sig = fn._signature()
    params = list(sig.parameters.values()) if sig is not None else []
    try:
        resolved = typing.get_type_hints(fn._original_function)
    except Exception:
        resolved = {}
    hints = {}
    for p in params:
        hint = resolved.get(p.name, p.annotation)
        hints[p.name] = Any if hint is inspect.Parameter.empty else type(None) if hint is None else hint
    ret = resolved.get("return", sig.return_annotation if sig is not None else inspect.Signature.empty)
    hints["return"] = Any if ret is inspect.Signature.empty else type(None) if ret is None else ret
    fn._app_hints_cache = (params, hints)
    return params, hints


def app_arguments(fn: Any, args: list, kwargs: dict) -> tuple[list[tuple[str, Any]], dict]:
    """The arguments an application takes, as Tensorlake picks them: unknown keyword arguments
    and positional ones beyond its parameters are ignored, and so is a positional argument whose
    parameter is also given by keyword. Returns ([(name, value)], {name: value})."""
    params, _ = app_hints(fn)
    names = {p.name for p in params}
    kept_kwargs = {k: v for k, v in kwargs.items() if k in names}
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    kept_args = []
    moved = {}
    for i, value in enumerate(args):
        if i >= len(positional):
            break
        param = positional[i]
        if param.name in kept_kwargs:
            continue
        if len(kept_args) < i:  # after a skipped one: pass by name so it lands on its parameter
            if param.kind is not param.POSITIONAL_ONLY:
                moved[param.name] = value
            continue
        kept_args.append((param.name, value))
    return kept_args, {**moved, **kept_kwargs}


def _hint_text(hint: Any) -> str:
    return "None" if hint is type(None) else str(hint)


def to_app_json(value: Any, hint: Any, what: str) -> dict:
    """Converts one request input or output to its boundary form by its type hint.

    Raises SerializationError (Tensorlake's text) when the value does not fit the hint."""
    if isinstance(value, AppInput):
        return value.form
    if _raw_body(value, hint):
        from ..interface.file import File
        from ..interface.http import HttpBody

        if isinstance(value, (File, HttpBody)):
            return raw_form(value.content, value.content_type)
        return encode(value, what)
    pydantic = _pydantic()
    try:
        if pydantic is not None:
            adapter = _adapter(pydantic, hint)
            data = json.loads(adapter.dump_json(adapter.validate_python(value), warnings="error"))
        else:
            data = json.loads(json.dumps(_std_convert(_std_convert(value, hint, False), Any, True)))
    except Exception as e:
        raise SerializationError(f"Failed to serialize '{value}' as '{_hint_text(hint)}' to json: {e}") from e
    if not is_json_exact(data):  # e.g. an int beyond 2**53: JSON peers would change it
        return encode(value, what)
    return {"json": data}


def from_app_json(data: Any, hint: Any) -> Any:
    """Builds a request input or output from its JSON form by its type hint."""
    return _from_json_text(json.dumps(data), hint)


def _from_json_text(text: str | bytes, hint: Any) -> Any:
    if hint is None:  # no annotation where a caller looked one up with .get()
        hint = Any
    pydantic = _pydantic()
    try:
        if pydantic is not None:
            return _adapter(pydantic, hint).validate_json(text)
        # Explicit UTF-8: json.loads would also guess UTF-16 and UTF-32 from bytes.
        return _std_convert(json.loads(text.decode("utf-8") if isinstance(text, bytes) else text), hint, False)
    except Exception as e:
        shown = text if isinstance(text, str) else text[:200].decode("utf-8", "replace")
        raise DeserializationError(
            f"Failed to deserialize data '{shown}' as '{_hint_text(hint)}' with json serializer: {e}"
        ) from e


def from_app_form(form: Any, hint: Any, what: str) -> Any:
    """One request input (or output) form at the boundary, converted by its type hint."""
    form = unspill(form, what)
    if not isinstance(form, dict) or len(form) != 1:
        return decode(form, what)
    if "raw" in form:
        content, content_type = raw_parts(form["raw"], what)
        if is_raw_hint(hint):
            return hint(content=content, content_type=content_type)
        try:
            return _from_json_text(content, hint)
        except DeserializationError as e:
            raise DeserializationError(f"{what}: {e}") from e.__cause__
    if "json" in form:
        if is_raw_hint(hint):  # Tensorlake hands such a parameter the JSON body's bytes
            return hint(content=json.dumps(form["json"]).encode(), content_type="application/json")
        return from_app_json(form["json"], hint)
    return decode(form, what)


def encode_app_inputs(fn: Any, args: list, kwargs: dict) -> tuple[list, dict]:
    """Client side of a request: the kept inputs as AppInput objects (see app_arguments)."""
    _, hints = app_hints(fn)
    kept_args, kept_kwargs = app_arguments(fn, args, kwargs)
    out_args = [AppInput(to_app_json(v, hints[n], f"request input '{n}'")) for n, v in kept_args]
    out_kwargs = {n: AppInput(to_app_json(v, hints[n], f"request input '{n}'")) for n, v in kept_kwargs.items()}
    return out_args, out_kwargs


def decode_app_inputs(fn: Any, args: list, kwargs: dict) -> tuple[list, dict]:
    """Root call of a request (local runner and worker alike): input forms -> arguments."""
    _, hints = app_hints(fn)
    kept_args, kept_kwargs = app_arguments(fn, args, kwargs)

    def one(name: str, form: Any) -> Any:
        return from_app_form(form, hints[name], f"argument '{name}' of {fn._name}()")

    return [one(n, f) for n, f in kept_args], {n: one(n, f) for n, f in kept_kwargs.items()}


def encode_app_output(fn: Any, value: Any) -> dict:
    """The root call's return value, by the application's return type hint."""
    _, hints = app_hints(fn)
    return to_app_json(value, hints["return"], f"return value of {fn._name}()")


def decode_app_output(fn: Any, form: Any) -> Any:
    """A request's output form by the application's return hint; a {"raw"} output is a File
    (an HttpBody when so annotated), as Tensorlake's local mode returns it."""
    hint = app_hints(fn)[1]["return"]
    if isinstance(form, dict) and "raw" in form and not is_raw_hint(hint):
        return decode(form, "request output")
    return from_app_form(form, hint, "request output")


def encode_app(value: Any, what: str) -> dict:
    """A request input or output with no type hint at hand (an AppInput passes through)."""
    if isinstance(value, AppInput):
        return value.form
    return to_app_json(value, Any, what)


def apply_hint(value: Any, hint: Any) -> Any:
    """A request output decoded from JSON, converted by the application's return type hint."""
    return from_app_json(value, hint)


def rebuild_model(value: Any, hint: Any) -> Any:
    """Between functions: rebuilds a pydantic model from a JSON dict when the annotation asks for one."""
    validate = getattr(hint, "model_validate", None)
    if isinstance(hint, type) and callable(validate) and isinstance(value, dict):
        try:
            return validate(value)
        except Exception as e:
            raise DeserializationError(f"value does not match {hint.__name__}: {e}") from e
    return value


def _std_convert(value: Any, hint: Any, dump: bool) -> Any:
    """Without pydantic: checks `value` against `hint` and converts it, to JSON values when
    `dump`, else from JSON values (lists to sets and tuples, str keys to int keys)."""
    import typing

    if hint is Any:
        if dump:
            return _jsonable(value)
        return value
    if hint is None or hint is type(None):
        if value is None:
            return None
        raise ValueError(f"expected None, got {type(value).__name__}")
    origin = typing.get_origin(hint)
    targs = typing.get_args(hint)
    if origin is typing.Union or (origin is not None and type(hint).__name__ == "UnionType"):
        errors = []
        for option in targs:
            try:
                return _std_convert(value, option, dump)
            except Exception as e:
                errors.append(str(e))
        raise ValueError(f"no member of {hint} accepts the value: {'; '.join(errors)}")
    if origin is typing.Literal:
        if value in targs:
            return value
        raise ValueError(f"expected one of {targs!r}, got {value!r}")
    base = origin or hint
    if base is bool:
        if type(value) is bool:
            return value
        raise ValueError(f"expected a bool, got {type(value).__name__}")
    if base is int:
        if type(value) is int or (type(value) is float and value.is_integer()):
            return int(value)
        raise ValueError(f"expected an int, got {type(value).__name__}")
    if base is float:
        if type(value) in (int, float):
            return float(value)
        raise ValueError(f"expected a float, got {type(value).__name__}")
    if base is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a str, got {type(value).__name__}")
    if base in (list, set, frozenset, tuple) or base in (typing.List, typing.Set, typing.Tuple):
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise ValueError(f"expected a {base.__name__}, got {type(value).__name__}")
        items = list(value)
        if base is tuple and targs and not (len(targs) == 2 and targs[1] is Ellipsis):
            if len(items) != len(targs):
                raise ValueError(f"expected {len(targs)} items, got {len(items)}")
            out = [_std_convert(v, t, dump) for v, t in zip(items, targs)]
        else:
            item_hint = targs[0] if targs else Any
            out = [_std_convert(v, item_hint, dump) for v in items]
        if dump:
            return out
        return base(out) if base in (set, frozenset, tuple) else out
    if base is dict:
        if not isinstance(value, dict):
            raise ValueError(f"expected a dict, got {type(value).__name__}")
        key_hint, value_hint = targs if len(targs) == 2 else (Any, Any)
        out = {}
        for k, v in value.items():
            if not dump and key_hint is int and isinstance(k, str):
                k = int(k)
            out[str(k) if dump else k] = _std_convert(v, value_hint, dump)
        return out
    if dump:  # a class we cannot check: its JSON form if it has one
        return _jsonable(value)
    return value


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value
