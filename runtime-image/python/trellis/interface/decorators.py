"""`@application()`, `@function()` and `@cls()`, validated where they are written."""

import inspect
import math
from typing import Any, Callable

from . import _registry
from .exceptions import SDKUsageError
from .image import Image
from .function import ApplicationConfig, Function, FunctionConfig
from .retries import Retries

DEFAULT_TIMEOUT = 300
DEFAULT_CPU = 1.0
DEFAULT_MEMORY_GB = 1.0
DEFAULT_EPHEMERAL_DISK_GB = 2.0


def _bare_use(decorator: str, value: Any) -> SDKUsageError:
    name = getattr(value, "__name__", repr(value))
    return SDKUsageError(
        f"@{decorator} must be called: write @{decorator}() above '{name}' (the decorator takes "
        "settings, not the function)"
    )


def _positive(decorator: str, name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> Any:
    bad_type = isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
    if bad_type or (not integer and not math.isfinite(value)):
        kind = "an integer" if integer else "a finite number"
        raise SDKUsageError(f"@{decorator}() {name} must be {kind}, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        rel = ">= 0" if allow_zero else "> 0"
        raise SDKUsageError(f"@{decorator}() {name} must be {rel}, got {value!r}")
    return value


def _str_list(decorator: str, name: str, value: Any) -> list:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise SDKUsageError(f"@{decorator}() {name} must be a list of non-empty strings, got {value!r}")
    return list(value)


def function(
    description: str = "",
    cpu: float = DEFAULT_CPU,
    memory: float = DEFAULT_MEMORY_GB,
    ephemeral_disk: float = DEFAULT_EPHEMERAL_DISK_GB,
    gpu: None | str | list = None,
    timeout: float = DEFAULT_TIMEOUT,
    image: Any = None,
    secrets: list | None = None,
    retries: Retries | None = None,
    region: str | None = None,
    warm_containers: int | None = None,
    min_containers: int | None = None,
    max_containers: int | None = None,
    max_concurrency: int = 1,
) -> Callable[[Callable], Function]:
    """Makes a Python function (sync or async) a function of an application.

    cpu in cores, memory and ephemeral_disk in GB, timeout in seconds per attempt.
    """
    if callable(description) and not isinstance(description, str):
        raise _bare_use("function", description)
    if not isinstance(description, str):
        raise SDKUsageError(f"@function() description must be a string, got {description!r}")
    _positive("function", "cpu", cpu)
    _positive("function", "memory", memory)
    _positive("function", "ephemeral_disk", ephemeral_disk)
    if gpu is not None and not isinstance(gpu, str):
        gpu = _str_list("function", "gpu", gpu)
    elif isinstance(gpu, str) and not gpu:
        raise SDKUsageError("@function() gpu must be None, a GPU spec string or a list of them, got ''")
    _positive("function", "timeout", timeout)
    secrets = _str_list("function", "secrets", secrets if secrets is not None else [])
    if image is not None and not isinstance(image, Image):
        raise SDKUsageError(f"@function() image must be an Image or None, got {image!r}")
    if retries is not None and not isinstance(retries, Retries):
        raise SDKUsageError(f"@function() retries must be a Retries object or None, got {retries!r}")
    if region is not None and not isinstance(region, str):
        raise SDKUsageError(f"@function() region must be a string or None, got {region!r}")
    for name, value in (
        ("warm_containers", warm_containers),
        ("min_containers", min_containers),
        ("max_containers", max_containers),
    ):
        if value is not None:
            _positive("function", name, value, integer=True, allow_zero=name != "max_containers")
    if min_containers is not None and max_containers is not None and min_containers > max_containers:
        raise SDKUsageError(
            f"@function() min_containers ({min_containers}) must be <= max_containers ({max_containers})"
        )
    if warm_containers is not None and max_containers is not None and warm_containers > max_containers:
        raise SDKUsageError(
            f"@function() warm_containers ({warm_containers}) must be <= max_containers ({max_containers})"
        )
    _positive("function", "max_concurrency", max_concurrency, integer=True)

    def decorate(fn: Callable) -> Function:
        if isinstance(fn, Function):
            # @function() above @application(): the application made the Function with default
            # settings; this decorator gives it its own. Twice @function() stays an error.
            if fn._function_decorated:
                raise SDKUsageError(f"@function() is applied twice to '{fn._name}'")
            fn._function_config = _config(fn._original_function, fn._function_config)
            fn._function_decorated = True
            return fn
        _check_plain("function", fn)
        result = Function(fn, _config(fn, None))
        result._function_decorated = True
        _registry.register_function(result)
        return result

    def _config(fn: Callable, previous: FunctionConfig | None) -> FunctionConfig:
        config = FunctionConfig(
            name=_function_name(fn),
            description=description or (inspect.getdoc(fn) or ""),
            cpu=float(cpu),
            memory=float(memory),
            ephemeral_disk=float(ephemeral_disk),
            gpu=gpu,
            timeout=float(timeout),
            image=image,
            secrets=secrets,
            retries=retries,
            min_containers=min_containers,
            max_containers=max_containers,
            warm_containers=warm_containers,
            max_concurrency=max_concurrency,
        )
        if previous is not None:  # set by @cls() when it ran first (it never does today)
            config.class_name = previous.class_name
            config.class_method_name = previous.class_method_name
            config.class_init_timeout = previous.class_init_timeout
        return config

    return decorate


def _function_name(fn: Callable) -> str:
    return fn.__qualname__ if "<locals>" not in fn.__qualname__ else fn.__name__


def _check_plain(decorator: str, fn: Any) -> None:
    if isinstance(fn, (staticmethod, classmethod)) or not inspect.isfunction(fn):
        raise SDKUsageError(
            f"@{decorator}() decorates a plain (sync or async) Python function, got {type(fn).__name__}"
        )
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise SDKUsageError(f"@{decorator}() cannot decorate generator '{fn.__qualname__}'")


def _default_config(fn: Callable) -> FunctionConfig:
    """The settings of a function that has no @function() below its @application() (yet)."""
    return FunctionConfig(
        name=_function_name(fn),
        description=inspect.getdoc(fn) or "",
        cpu=DEFAULT_CPU,
        memory=DEFAULT_MEMORY_GB,
        ephemeral_disk=DEFAULT_EPHEMERAL_DISK_GB,
        gpu=None,
        timeout=float(DEFAULT_TIMEOUT),
        image=None,
        secrets=[],
        retries=None,
        min_containers=None,
        max_containers=None,
        warm_containers=None,
        max_concurrency=1,
    )


def application(
    tags: dict | None = None,
    retries: Retries | None = None,
    region: str | None = None,
    allow: list | None = None,
    **_ignored: Any,
) -> Callable:
    """Marks a function as an application entry point; stacked above or below @function().

    `allow` lists ApplicationCapability values (e.g. "unauthenticated_requests").
    """
    if callable(tags) and not isinstance(tags, dict):
        raise _bare_use("application", tags)
    tags = {} if tags is None else tags
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise SDKUsageError(f"@application() tags must be a dict of string keys to string values, got {tags!r}")
    if retries is not None and not isinstance(retries, Retries):
        raise SDKUsageError(f"@application() retries must be a Retries object or None, got {retries!r}")

    if allow is not None and (not isinstance(allow, (list, tuple)) or not all(isinstance(a, str) for a in allow)):
        raise SDKUsageError(f"@application() allow must be a list of capability strings, got {allow!r}")

    def decorate(fn: Any) -> Function:
        if not isinstance(fn, Function):
            # @function() may come above @application() (Tensorlake accepts either order).
            _check_plain("application", fn)
            fn = Function(fn, _default_config(fn))
            _registry.register_function(fn)
        fn._application_config = ApplicationConfig(
            tags=dict(tags), retries=retries or Retries(), region=region, allow=list(allow or [])
        )
        return fn

    return decorate


def cls(init_timeout: float | None = None) -> Callable:
    """Marks a class whose @function() methods share one instance per container."""
    if isinstance(init_timeout, type):
        raise _bare_use("cls", init_timeout)
    if init_timeout is not None:
        _positive("cls", "init_timeout", init_timeout)

    def decorate(klass: Any) -> Any:
        if not isinstance(klass, type):
            raise SDKUsageError(f"@cls() decorates a class, got {type(klass).__name__}")
        original_init = klass.__init__
        klass.__trellis_original_init__ = original_init

        def __init__(self, *args, **kwargs):  # instances made by users are inert handles
            pass

        klass.__init__ = __init__
        _registry.register_class(klass.__qualname__, klass)
        for attr, value in list(vars(klass).items()):
            if isinstance(value, Function):
                value._function_config.class_name = klass.__qualname__
                value._function_config.class_method_name = attr
                value._function_config.class_init_timeout = init_timeout
        return klass

    return decorate


def is_application(fn: Any) -> bool:
    return isinstance(fn, Function) and fn._application_config is not None
