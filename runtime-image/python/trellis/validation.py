"""Static checks of the applications loaded into this process (Tensorlake's validation API).

`validate_loaded_applications()` returns ValidationMessages (errors, warnings, infos) with the
same rules and texts as Tensorlake's validator, so tools and tests written for Tensorlake read
them unchanged. Checks that our decorators already make at decoration time (a decorator used
without parentheses, @cls() on a function, @function() on a class, most settings) raise there
instead, so they never reach this module.
"""

import inspect
import math
import os
import sys
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from .interface import _registry
from .interface.exceptions import SerializationError
from .interface.file import File
from .interface.function import Function
from .interface.futures import Future
from .interface.http import HttpBody
from .interface.retries import Retries

__all__ = [
    "ClassDetails",
    "FunctionDetails",
    "ValidationMessage",
    "ValidationMessageSeverity",
    "format_validation_messages",
    "get_class_details",
    "get_function_details",
    "has_error_message",
    "validate_loaded_applications",
]


# -- where a function or class is (never raises: it describes invalid code too) ----------


@dataclass
class FunctionDetails:
    name: str  # the function's name in the application (its qualified name)
    class_name: str | None  # enclosing class for methods
    class_method_name: str | None
    module_import_name: str
    source_file_path: str
    source_file_line: int


@dataclass
class ClassDetails:
    class_name: str
    module_import_name: str
    source_file_path: str
    source_file_line: int


def _qualname(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or "<unknown>"


def _method_class_name(fn: Any) -> str | None:
    # PEP 3155: "A.f" is a method of A, "g.<locals>.f" is a local function.
    if not (inspect.isfunction(fn) or inspect.ismethod(fn)):
        return None if inspect.isclass(fn) else "<unknown>"
    parts = _qualname(fn).split(".")
    if len(parts) == 1 or parts[-2] == "<locals>":
        return None
    return ".".join(parts[:-1])


def _module_name(obj: Any) -> str:
    module = inspect.getmodule(obj)
    return "<unknown>" if module is None else module.__name__


def _source_file(obj: Any) -> str:
    try:
        return inspect.getsourcefile(obj) or "<unknown>"
    except TypeError:
        return "<builtin>"


def _source_line(obj: Any) -> int:
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return -1


def get_function_details(fn: Callable) -> FunctionDetails:
    class_name = _method_class_name(fn)
    return FunctionDetails(
        name=_qualname(fn),
        class_name=class_name,
        class_method_name=None if class_name is None else _qualname(fn).split(".")[-1],
        module_import_name=_module_name(fn),
        source_file_path=_source_file(fn),
        source_file_line=_source_line(fn),
    )


def get_class_details(cls: Any) -> ClassDetails:
    return ClassDetails(
        class_name=_qualname(cls) if inspect.isclass(cls) else "<unknown>",
        module_import_name=_module_name(cls),
        source_file_path=_source_file(cls),
        source_file_line=_source_line(cls),
    )


def _is_module_level(obj: Any) -> bool:
    return "<locals>" not in _qualname(obj)


# -- messages --------------------------------------------------------------------------


class ValidationMessageSeverity(Enum):
    ERROR = 1
    WARNING = 2
    INFO = 3


@dataclass
class ValidationMessage:
    message: str
    severity: ValidationMessageSeverity
    details: FunctionDetails | ClassDetails | None  # None for application-wide messages


def has_error_message(messages: list[ValidationMessage]) -> bool:
    return any(m.severity == ValidationMessageSeverity.ERROR for m in messages)


def format_validation_messages(messages: list[ValidationMessage]) -> list[dict]:
    """[{"severity": "error"|"warning"|"info", "message", "location": "module:line:name: "}]."""
    result = []
    for m in messages:
        d = m.details
        location = ""
        if isinstance(d, FunctionDetails):
            name = d.name if d.class_name is None else f"{d.class_name}.{d.class_method_name}"
            location = ":".join([d.module_import_name, str(d.source_file_line), name, " "])
        elif isinstance(d, ClassDetails):
            location = ":".join([d.module_import_name, str(d.source_file_line), d.class_name, " "])
        result.append({"severity": m.severity.name.lower(), "message": m.message, "location": location})
    return result


def _error(text: str, details: Any) -> ValidationMessage:
    return ValidationMessage(text, ValidationMessageSeverity.ERROR, details)


def _info(text: str, details: Any) -> ValidationMessage:
    return ValidationMessage(text, ValidationMessageSeverity.INFO, details)


# -- what the registry holds ------------------------------------------------------------


def _all_definitions() -> list[Function]:
    return [f for f in _registry.defined_since(0) if isinstance(f, Function)]


def _current_functions() -> list[Function]:
    # A redefinition replaces the earlier function of the same name (the last one runs).
    latest: dict[str, Function] = {}
    for fn in _all_definitions():
        latest[fn._name] = fn
    return list(latest.values())


def _all_classes() -> list[type]:
    """Every @cls() class seen, also those a later class of the same name replaced."""
    found: dict[int, type] = {}
    for klass in list(_registry._classes.values()):
        found[id(klass)] = klass
    # The registry keeps one class per name; a replaced one is still reachable from its module
    # through the methods it registered.
    for fn in _all_definitions():
        class_name = fn._function_config.class_name
        if class_name is None:
            continue
        module = sys.modules.get(getattr(fn._original_function, "__module__", "") or "")
        obj: Any = module
        for part in class_name.split("."):
            obj = getattr(obj, part, None)
        if inspect.isclass(obj) and hasattr(obj, "__trellis_original_init__"):
            found[id(obj)] = obj
    return list(found.values())


def _abs(path: str) -> str:
    try:
        return os.path.abspath(path)
    except Exception:
        return path


# -- the rules --------------------------------------------------------------------------


def validate_loaded_applications() -> list[ValidationMessage]:
    """Validates the applications loaded into this process (static aspects only)."""
    messages: list[ValidationMessage] = []
    messages.extend(_validate_function_duplicates())
    messages.extend(_validate_class_duplicates())
    for klass in _registry._classes.values():
        messages.extend(_validate_class(klass))
    functions = _current_functions()
    if not any(fn._application_config is not None for fn in functions):
        messages.append(
            _error(
                "No application function is defined. Please add at least one application function "
                "by adding @application() decorator to it.",
                None,
            )
        )
    for fn in functions:
        messages.extend(_validate_function(fn))
    return messages


def _validate_function_duplicates() -> list[ValidationMessage]:
    by_name: dict[str, list[Function]] = {}
    for fn in _all_definitions():
        by_name.setdefault(fn._name, []).append(fn)
    messages = []
    for name, fns in by_name.items():
        # The same file may define a function twice (a redefinition, or pickle importing
        # __main__ again under its real name); only different files clash.
        paths: dict[str, FunctionDetails] = {}
        for fn in fns:
            details = get_function_details(fn._original_function)
            if details.class_name is not None:
                continue  # methods are checked with their classes
            paths[_abs(details.source_file_path)] = details
        if len(paths) > 1:
            messages.append(
                _error(
                    f"Function '{name}' is defined in files: {', '.join(paths)}. Functions with the same "
                    "names can't be defined in different files. Please rename the functions.",
                    details,  # the last definition: the one that runs
                )
            )
    return messages


def _validate_class_duplicates() -> list[ValidationMessage]:
    by_name: dict[str, list[type]] = {}
    for klass in _all_classes():
        by_name.setdefault(klass.__qualname__, []).append(klass)
    messages = []
    for name, classes in by_name.items():
        current = _registry.get_class(name)
        paths = {_abs(get_class_details(k).source_file_path) for k in classes}
        if len(paths) > 1:
            messages.append(
                _error(
                    f"Class '{name}' is defined in files: {', '.join(sorted(paths))}. Classes with the same "
                    "names can't be defined in different files. Please rename the classes.",
                    get_class_details(current if current is not None else classes[-1]),
                )
            )
    return messages


def _validate_class(klass: type) -> list[ValidationMessage]:
    details = get_class_details(klass)
    name = klass.__qualname__
    messages = []
    init = getattr(klass, "__trellis_original_init__", klass.__init__)
    try:
        params = list(inspect.signature(init).parameters.values())
    except (TypeError, ValueError):
        params = None
    if params is not None:
        if not params:
            messages.append(
                _error(f"'{name}.__init__' is missing 'self' parameter. Please add 'self' parameter.", details)
            )
        else:
            if params[0].name != "self":
                messages.append(
                    _error(
                        f"'{name}.__init__' should have its first parameter named 'self'. "
                        "Please rename the first parameter to 'self'.",
                        details,
                    )
                )
            # A class without its own __init__ has object's (self, /, *args, **kwargs): fine.
            inherited = (
                len(params) == 3
                and params[1].kind == inspect.Parameter.VAR_POSITIONAL
                and params[2].kind == inspect.Parameter.VAR_KEYWORD
            )
            if len(params) > 1 and not inherited:
                messages.append(
                    _error(
                        f"'{name}.__init__' can only have a single 'self' parameter. "
                        "Please remove the rest of the parameters.",
                        details,
                    )
                )
    if not _is_module_level(klass):
        messages.append(
            _error(
                "Only module level classes are supported. Please move the class to module level by i.e. "
                "moving it outside of the function where it is defined.",
                details,
            )
        )
    return messages


def _validate_function(fn: Function) -> list[ValidationMessage]:
    details = get_function_details(fn._original_function)
    messages = []
    if details.class_name is None and not _is_module_level(fn._original_function):
        messages.append(
            _error(
                "Only module level functions are supported. Please move the function to module level by i.e. "
                "moving it outside of the function where it is defined.",
                details,
            )
        )
    messages.extend(_validate_function_config(fn, details))
    if fn._application_config is not None:
        messages.extend(_validate_application(fn, details))
    if details.class_name is not None:
        messages.extend(_validate_method(fn, details))
    return messages


def _finite_positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _valid_gpu(value: Any) -> bool:
    if value is None:
        return True
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, str):
            return False
        parts = item.split(":")
        if not parts[0] or len(parts) > 2:
            return False
        if len(parts) == 2 and not (parts[1].isdigit() and str(int(parts[1])) == parts[1] and int(parts[1]) > 0):
            return False
    return True


def _retries_messages(retries: Any, label: str, details: FunctionDetails) -> list[ValidationMessage]:
    if not isinstance(retries, Retries):
        return [_error(f"{label} must be a Retries object.", details)]
    n = retries.max_retries
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 10:
        return [_error(f"{label} max_retries must be an integer between 0 and 10.", details)]
    return []


def _validate_function_config(fn: Function, details: FunctionDetails) -> list[ValidationMessage]:
    config = fn._function_config
    messages = []
    for label, value in (("cpu", config.cpu), ("memory", config.memory), ("ephemeral_disk", config.ephemeral_disk)):
        if not _finite_positive(value):
            messages.append(_error(f"Function {label} must be a finite number greater than zero.", details))
    # Our decorator stores the timeout as a float, so a whole float counts as an integer here.
    t = config.timeout
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 1 <= t <= 86_400:
        messages.append(_error("Function timeout must be an integer between 1 and 86400 seconds.", details))
    if not isinstance(config.secrets, list) or any(not isinstance(s, str) or not s for s in config.secrets):
        messages.append(_error("Function secrets must be a list of non-empty strings.", details))
    if not _valid_gpu(config.gpu):
        messages.append(
            _error(
                "Function gpu must be a GPU model or list of GPU models, "
                "optionally followed by a positive integer count.",
                details,
            )
        )
    region = getattr(config, "region", None)
    if region not in (None, "us-east-1", "eu-west-1"):
        messages.append(_error("Function region must be 'us-east-1', 'eu-west-1', or None.", details))
    counts: dict[str, int] = {}
    for label in ("warm_containers", "min_containers", "max_containers"):
        value = getattr(config, label)
        if value is None:
            continue
        if _non_negative_int(value):
            counts[label] = value
        else:
            messages.append(_error(f"Function {label} must be a non-negative integer.", details))
    maximum = counts.get("max_containers")
    if maximum is not None and counts.get("min_containers", 0) > maximum:
        messages.append(_error("Function min_containers cannot exceed max_containers.", details))
    if maximum is not None and counts.get("warm_containers", 0) > maximum:
        messages.append(_error("Function warm_containers cannot exceed max_containers.", details))
    if config.retries is not None:
        messages.extend(_retries_messages(config.retries, "Function retries", details))
    return messages


# -- application type hints ---------------------------------------------------------------


def _is_class_of(hint: Any, base: type) -> bool:
    return inspect.isclass(hint) and issubclass(hint, base)


def _contains(hint: Any, base: type, seen: set | None = None) -> bool:
    """Whether `base` appears anywhere inside a type hint (list[File], File | None, ...)."""
    seen = set() if seen is None else seen
    if id(hint) in seen:
        return False
    seen.add(id(hint))
    if _is_class_of(hint, base) or _is_class_of(typing.get_origin(hint), base):
        return True
    return any(_contains(arg, base, seen) for arg in typing.get_args(hint))


def _pydantic() -> Any:
    try:
        import pydantic
    except Exception:  # the SDK never requires pydantic: schema checks need it
        return None
    return pydantic if hasattr(pydantic, "TypeAdapter") else None


def _schema_error(hint: Any) -> tuple[str, str] | None:
    """("CoreSchema"|"JSON schema", pydantic's error) when pydantic can't take the hint."""
    pydantic = _pydantic()
    if pydantic is None:
        return None
    try:
        adapter = pydantic.TypeAdapter(hint)
    except Exception as e:
        return "CoreSchema", str(e)
    try:
        adapter.json_schema()
    except Exception as e:
        return "JSON schema", str(e)
    return None


def _wrapper_in(hint: Any, error_text: str = "") -> str | None:
    """"File"/"HttpBody" when the hint nests one (as Tensorlake names it: File wins)."""
    has_file = _contains(hint, File) or str(File) in error_text
    has_body = _contains(hint, HttpBody) or str(HttpBody) in error_text
    if has_file or has_body:
        return "HttpBody" if has_body and not has_file else "File"
    return None


def _resolved_signature(fn: Function) -> inspect.Signature:
    sig = inspect.signature(fn._original_function)
    try:  # string annotations (from __future__ import annotations) as real types
        hints = typing.get_type_hints(fn._original_function, include_extras=True)
    except Exception:
        hints = {}
    params = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in sig.parameters.values()]
    ret = hints.get("return", sig.return_annotation)
    if ret is type(None) and sig.return_annotation is None:
        ret = None
    return sig.replace(parameters=params, return_annotation=ret)


def _hint_of(annotation: Any) -> Any:
    return type(None) if annotation is None else annotation


def _validate_application(fn: Function, details: FunctionDetails) -> list[ValidationMessage]:
    messages = []
    config = fn._application_config
    tags = config.tags
    if not isinstance(tags, dict) or any(
        not isinstance(k, str) or not k or not isinstance(v, str) for k, v in tags.items()
    ):
        messages.append(_error("Application tags require non-empty string keys and string values.", details))
    if not isinstance(config.allow, list) or any(a != "unauthenticated_requests" for a in config.allow):
        messages.append(_error("Application allow must contain only 'unauthenticated_requests'.", details))
    messages.extend(_retries_messages(config.retries, "Application retries", details))
    if config.region not in (None, "us-east-1", "eu-west-1"):
        messages.append(_error("Application region must be 'us-east-1', 'eu-west-1', or None.", details))

    if not fn._function_decorated:
        messages.append(
            _error(
                "Application function is missing @function() decorator. "
                "Please add it. An application function needs both @application() and @function() decorators.",
                details,
            )
        )

    try:
        sig = _resolved_signature(fn)
    except Exception as e:
        messages.append(
            _error(
                f"Failed to get signature of application function: {e}. "
                "Please make sure that the application function is defined correctly.",
                details,
            )
        )
        return messages

    params = list(sig.parameters.values())[0 if details.class_name is None else 1 :]
    for p in params:
        if p.kind != inspect.Parameter.POSITIONAL_OR_KEYWORD:
            # Request inputs bind by position or by name, so both must work.
            messages.append(
                _error(
                    f"Application function parameter '{p.name}' has unsupported parameter kind "
                    f"'{p.kind.description}'. Please change the parameter to be positional or keyword "
                    "(the default kind for Python parameters).",
                    details,
                )
            )
        if p.annotation is inspect.Parameter.empty:
            messages.append(
                _info(
                    f"It is recommended to add a type hint for application function parameter '{p.name}'. "
                    "This ensures that the parameter value is properly deserialized from JSON or File request inputs. "
                    "This also helps generating a JSON schema for the parameter and an example curl command "
                    "for running the application.",
                    details,
                )
            )
            continue
        hint = _hint_of(p.annotation)
        if _is_class_of(hint, (File, HttpBody)):
            continue  # takes the request body's bytes, no JSON schema
        wrapper = _wrapper_in(hint)
        failure = None if wrapper else _schema_error(hint)
        if failure is not None and wrapper is None:
            wrapper = _wrapper_in(hint, failure[1])
        if wrapper:
            messages.append(
                _error(
                    f"Application function parameter '{p.name}' uses a {wrapper} object in a complex type hint "
                    f"'{p.annotation}'. Only simple type hints like '{p.name}: {wrapper}' are supported for "
                    f"{wrapper} objects in application function parameters. A {wrapper} object cannot be embedded "
                    f"inside other type hints like '{p.name}: list[{wrapper}]', '{p.name}: dict[str, {wrapper}]', "
                    f"etc or be a part of union type hint like '{p.name}: {wrapper} | None'.",
                    details,
                )
            )
            continue
        if failure is not None:
            kind, text = failure
            last = "compatible" if kind == "CoreSchema" else "serializable to JSON format"
            messages.append(
                _error(
                    f"Pydantic failed to generate {kind} for Application function parameter '{p.name}' "
                    f"with type hint '{p.annotation}'. Please follow Pydantic documentation and the following "
                    f"Pydantic error message to make the type hint {last}.\nPydantic error message:\n{text}\n",
                    details,
                )
            )
            if kind == "CoreSchema":
                continue
        if p.default is not inspect.Parameter.empty:
            from ._core import values

            try:  # the default is sent as the request input would be: it must fit its hint
                values.to_app_json(p.default, hint, f"default of '{p.name}'")
            except SerializationError as e:
                messages.append(
                    _error(
                        f"Application function parameter '{p.name}' has a default value that can't be serialized "
                        f"with the type hint of the parameter {p.annotation}. Please follow Pydantic documentation "
                        "and the following SerializationError to make the default value serializable to JSON "
                        f"format:\n{e}\n",
                        details,
                    )
                )

    messages.extend(_validate_return_hint(sig.return_annotation, details))
    return messages


def _future_text(where: str) -> str:
    return (
        f"Instead of using Future {where}, please use type hint of the value returned by the Future. "
        "For example, if the Future (once resolved) returns str, then please use 'str' in the return type "
        "hint of the application function instead of the Future."
    )


def _validate_return_hint(annotation: Any, details: FunctionDetails) -> list[ValidationMessage]:
    if annotation is inspect.Signature.empty:
        return [
            _info(
                "It is recommended to add a return type hint for the application function. "
                "This helps to ensure that the returned value is properly serialized and that it matches the "
                "type hint. This also helps generating a JSON schema for the return type of the function.",
                details,
            )
        ]
    hint = _hint_of(annotation)
    if _is_class_of(hint, File):
        return []  # returned as raw bytes with its content type
    if _is_class_of(hint, HttpBody):
        return [
            _error(
                "Application function return type hint is an HttpBody. "
                "HttpBody is only supported for application function parameters. "
                "Use File or bytes-compatible JSON types for application return values.",
                details,
            )
        ]
    if _is_class_of(hint, Future) or _is_class_of(typing.get_origin(hint), Future):
        return [
            _error("Application function return type hint is a Future. " + _future_text("as a return type hint"), details)
        ]
    wrapper = _wrapper_in(hint)
    failure = None if wrapper else _schema_error(hint)
    if failure is not None and wrapper is None:
        wrapper = _wrapper_in(hint, failure[1])
    if wrapper:
        return [
            _error(
                f"Application function return type hint '{annotation}' uses a {wrapper} object in a complex "
                f"type hint. Only simple type hints like 'foo: {wrapper}' are supported for {wrapper} objects "
                f"in application function return types. A {wrapper} object cannot be embedded inside other "
                f"type hints like 'foo: list[{wrapper}]', 'foo: dict[str, {wrapper}]', etc or be a part of "
                f"union type hint like 'foo: {wrapper} | None'.",
                details,
            )
        ]
    if _contains(hint, Future) or (failure is not None and str(Future) in failure[1]):
        return [
            _error(
                f"Application function return type hint '{annotation}' uses a Future. "
                + _future_text("in the return type hint"),
                details,
            )
        ]
    if failure is None:
        return []
    kind, text = failure
    last = "compatible" if kind == "CoreSchema" else "serializable to JSON format"
    return [
        _error(
            f"Pydantic failed to generate {kind} for Application function return type hint '{annotation}'. "
            f"Please follow Pydantic documentation and the following Pydantic error message to make the type "
            f"hint {last}.\nPydantic error message:\n{text}\n",
            details,
        )
    ]


def _validate_method(fn: Function, details: FunctionDetails) -> list[ValidationMessage]:
    class_name = details.class_name or ""
    if "<locals>" not in class_name and "." in class_name:
        return [
            _error(
                "Function is defined inside a nested class. Nested classes are not supported. "
                "Please move the function to a top level class.",
                details,
            )
        ]
    messages = []
    # @cls() marks the methods of the class it decorates.
    if fn._function_config.class_name is None:
        messages.append(
            _error(f"Please add @cls() decorator to class '{class_name}' where the function is defined.", details)
        )
    if fn._application_config is None:  # an application's parameters are checked above
        try:
            params = list(inspect.signature(fn._original_function).parameters.values())
        except (TypeError, ValueError):
            params = []
        if not params or params[0].name != "self":
            messages.append(
                _error(
                    "Function is a class method so it needs a 'self' parameter. "
                    "Please add 'self' as the first parameter of the function.",
                    details,
                )
            )
    return messages
