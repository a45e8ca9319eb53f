"""Loads the user's code once and describes its functions for the sidecar."""

import importlib
import os
import sys
from typing import Any

from ..interface import _registry
from ..interface.decorators import is_application
from ..interface.exceptions import SDKUsageError
from ..interface.function import Function
from . import codezip, tlmanifest


def load(module: str) -> dict[str, Function]:
    """Imports a module name, a .py file or a code .zip (Tensorlake's deploy format); returns the
    functions it defined, by name."""
    mark = _registry.mark()
    if module.endswith(".zip"):
        root = codezip.extract(os.path.abspath(module))
        sys.path.insert(0, root)
        for name in codezip.modules(root):
            importlib.import_module(name)
    elif module.endswith(".py") or os.path.sep in module:
        path = os.path.abspath(module)
        if not os.path.isfile(path):
            raise SDKUsageError(f"module file {path} does not exist")
        # Importing by name (not exec) lets pickled values refer to the module's classes.
        sys.path.insert(0, os.path.dirname(path))
        name = os.path.splitext(os.path.basename(path))[0]
        importlib.import_module(name)
    else:
        importlib.import_module(module)
    functions: dict[str, Function] = {}
    for fn in _registry.defined_since(mark):
        other = functions.get(fn._name)
        if other is not None and other is not fn:
            raise SDKUsageError(f"two functions are named '{fn._name}'; function names must be unique")
        functions[fn._name] = fn
    if not functions:
        raise SDKUsageError(f"module {module} defines no @function()")
    return functions


def _retries(r: Any) -> dict | None:
    return None if r is None else r.to_dict()


def describe(fn: Function) -> dict:
    cfg = fn._function_config
    sig = fn._signature()
    info = {
        "name": fn._name,
        "async": fn._is_async,
        "application": is_application(fn),
        "description": cfg.description,
        "parameters": [] if sig is None else list(sig.parameters),
        "timeout": cfg.timeout,
        "retries": _retries(cfg.retries),
        "cpu": cfg.cpu,
        "memory": cfg.memory,
        "ephemeral_disk": cfg.ephemeral_disk,
        "gpu": cfg.gpu,
        "secrets": list(cfg.secrets),
        "image": None if cfg.image is None else f"{cfg.image.name}:{cfg.image.tag}",
        "min_containers": cfg.min_containers,
        "max_containers": cfg.max_containers,
        "warm_containers": cfg.warm_containers,
        "max_concurrency": cfg.max_concurrency,
        "class_name": cfg.class_name,
        "init_timeout": cfg.class_init_timeout,
    }
    if is_application(fn):
        app = fn._application_config
        info["tags"] = dict(app.tags)
        info["application_retries"] = _retries(app.retries)
        # Tensorlake's EntryPointManifest fields, for the operator's Tensorlake-shaped manifest.
        info["tensorlake"] = tlmanifest.entrypoint(fn)
    return info
