"""The entrypoint bits of Tensorlake's application manifest for an @application() function, so the
operator can serve `GET .../applications/{app}` in the shape Tensorlake's client reads
(tensorlake.applications.remote.manifests.application.EntryPointManifest).

Tensorlake's client unpickles `inputs_base64` into a list of its pydantic EntryPointInputManifest
and `output_type_hints_base64` into a type hint. Neither pydantic nor Tensorlake may be installed
here, so the pickles are written with the standard library: classes are named by the module paths
they have in the real `tensorlake` package, which is what the client imports.
"""

import base64
import copyreg
import inspect
import io
import pickle
import typing
from typing import Any

from ..interface.file import File
from ..interface.http import HttpBody

_APPLICATION_MANIFESTS = "tensorlake.applications.remote.manifests.application"


class _EntryPointInput:
    """Stands in for EntryPointInputManifest(arg_name, type_hint) in a pickle."""

    def __init__(self, arg_name: str, type_hint: Any) -> None:
        self.arg_name = arg_name
        self.type_hint = type_hint

    def __reduce_ex__(self, protocol: int) -> tuple:
        # pydantic.BaseModel.__setstate__ takes exactly this state.
        state = {
            "__dict__": {"arg_name": self.arg_name, "type_hint": self.type_hint},
            "__pydantic_extra__": None,
            "__pydantic_fields_set__": {"arg_name", "type_hint"},
            "__pydantic_private__": None,
        }
        return copyreg.__newobj__, (type(self),), state


# Our classes -> where Tensorlake's client finds its own.
_RENAMED = {
    _EntryPointInput: (_APPLICATION_MANIFESTS, "EntryPointInputManifest"),
    File: ("tensorlake.applications.interface.file", "File"),
    HttpBody: ("tensorlake.applications.interface.http", "HttpBody"),
}


class _Pickler(pickle._Pickler):  # the Python pickler: its save_global can be overridden
    def save_global(self, obj: Any, name: str | None = None) -> None:
        renamed = _RENAMED.get(obj) if isinstance(obj, type) else None
        if renamed is None:
            return super().save_global(obj, name)
        module, qualname = renamed
        self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode("utf-8"))
        self.memoize(obj)


def _pickle(obj: Any) -> str:
    buf = io.BytesIO()
    # Protocol 2 (GLOBAL opcodes): readable by any Python 3 client.
    _Pickler(buf, protocol=2).dump(obj)
    # Tensorlake writes base64.encodebytes (newlines every 76 characters); decoders accept both.
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _hint(hint: Any) -> Any:
    return Any if hint is inspect.Parameter.empty or hint is inspect.Signature.empty else hint


def entrypoint(fn: Any) -> dict:
    """{"input_serializer", "inputs_base64", "output_serializer", "output_type_hints_base64"}."""
    sig = fn._signature()
    params = [] if sig is None else list(sig.parameters.values())
    # As Tensorlake does: the annotations as written (not resolved), a missing one is Any.
    inputs = [_EntryPointInput(p.name, _hint(p.annotation)) for p in params]
    ret = _hint(sig.return_annotation) if sig is not None else Any
    try:
        inputs_b64, output_b64 = _pickle(inputs), _pickle(ret)
    except Exception:  # a hint that cannot be pickled (e.g. a local class) reads as Any
        inputs_b64 = _pickle([_EntryPointInput(p.name, _safe(p.annotation)) for p in params])
        output_b64 = _pickle(_safe(ret))
    return {
        "input_serializer": "json",
        "inputs_base64": inputs_b64,
        "output_serializer": "json",
        "output_type_hints_base64": output_b64,
    }


def _safe(hint: Any) -> Any:
    hint = _hint(hint)
    try:
        _pickle(hint)
    except Exception:
        return typing.Any
    return hint
