"""Every function and class the decorators saw, in definition order."""

import threading
from typing import Any

_lock = threading.Lock()
_functions: dict[str, Any] = {}
_classes: dict[str, Any] = {}
_all: list[Any] = []


def register_function(fn: Any) -> None:
    with _lock:
        _functions[fn._name] = fn
        _all.append(fn)


def register_class(name: str, cls: Any) -> None:
    with _lock:
        _classes[name] = cls


def get_function(name: str) -> Any:
    return _functions.get(name)


def get_class(name: str) -> Any:
    return _classes.get(name)


def mark() -> int:
    """Position in the definition log (to list what an import defined)."""
    return len(_all)


def defined_since(position: int) -> list[Any]:
    with _lock:
        return list(_all[position:])
