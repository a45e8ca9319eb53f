"""validate_loaded_applications(): Tensorlake's rules and texts over our registry."""

import importlib.util
import sys
import textwrap

import pytest

from trellis.interface import _registry
from trellis.validation import (
    ClassDetails,
    FunctionDetails,
    ValidationMessageSeverity as Sev,
    format_validation_messages,
    has_error_message,
    validate_loaded_applications,
)

try:
    import pydantic  # noqa: F401

    HAS_PYDANTIC = True
except Exception:
    HAS_PYDANTIC = False


@pytest.fixture(autouse=True)
def empty_registry():
    # The registry is process-wide: each test sees only the modules it loads.
    saved = (dict(_registry._functions), dict(_registry._classes), list(_registry._all))
    _registry._functions.clear()
    _registry._classes.clear()
    _registry._all.clear()
    loaded = []
    yield loaded
    _registry._functions.clear()
    _registry._functions.update(saved[0])
    _registry._classes.clear()
    _registry._classes.update(saved[1])
    _registry._all[:] = saved[2]
    for name in loaded:
        sys.modules.pop(name, None)


_counter = [0]


@pytest.fixture
def load(tmp_path, empty_registry):
    """Writes `source` to a module file and imports it (so definitions are module level)."""

    def _load(body: str, prelude: str = "", name: str | None = None):
        _counter[0] += 1
        name = name or f"_validation_app_{_counter[0]}"
        directory = tmp_path / f"d{_counter[0]}"
        directory.mkdir()
        path = directory / f"{name}.py"
        path.write_text(prelude + HEADER + textwrap.dedent(body))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        empty_registry.append(name)
        spec.loader.exec_module(module)
        return module

    return _load


HEADER = "from trellis import application, cls, function, File, HttpBody, Future, Retries\n"


def only(messages):
    assert len(messages) == 1, [m.message for m in messages]
    return messages[0]


def test_valid_applications_have_no_messages(load):
    load(
        """
        @application()
        @function()
        def app(a: int, f: File, b: str = "x", c: list[int] = [1]) -> File:
            return f

        @function()
        @application(tags={"team": "a"}, retries=Retries(max_retries=3), region="us-east-1")
        def body_app(body: HttpBody) -> dict[str, int]:
            return {}

        @function(gpu=["H100:2", "A10"], secrets=["s"], min_containers=1, max_containers=2)
        def helper(x: int) -> int:
            return x

        @cls()
        class Model:
            def __init__(self):
                self.w = 1

            @application()
            @function()
            def predict(self, x: float) -> float:
                return x

            @function()
            def step(self, x):
                return x

        @cls()
        class NoInit:
            @function()
            def run(self):
                return 1
        """
    )
    assert validate_loaded_applications() == []


def test_string_annotations_are_resolved(load):
    load(
        prelude="from __future__ import annotations\n",
        body="""
        @application()
        @function()
        def app(f: File, n: int | None = None) -> File | None:
            return f
        """.replace("-> File | None", "-> File")
    )
    assert validate_loaded_applications() == []


def test_redefinition_in_the_same_file_is_valid(load):
    load(
        """
        @application()
        @function()
        def app(x: str) -> str:
            return x

        @application()
        @function()
        def app(x: str) -> str:
            return x + "!"
        """
    )
    assert validate_loaded_applications() == []


def test_no_application_defined(load):
    load("\n@function()\ndef f(x: int) -> int:\n    return x\n")
    m = only(validate_loaded_applications())
    assert m.severity == Sev.ERROR and m.details is None
    assert m.message == (
        "No application function is defined. Please add at least one application function "
        "by adding @application() decorator to it."
    )
    assert has_error_message([m])


def test_application_without_function_decorator(load):
    mod = load("\n\n@application()\ndef app(x: int) -> int:\n    return x\n")
    m = only(validate_loaded_applications())
    assert m.severity == Sev.ERROR
    assert m.message == (
        "Application function is missing @function() decorator. Please add it. "
        "An application function needs both @application() and @function() decorators."
    )
    assert m.details == FunctionDetails(
        name="app",
        class_name=None,
        class_method_name=None,
        module_import_name=mod.__name__,
        source_file_path=mod.__file__,
        source_file_line=4,
    )


def test_missing_type_hints_are_infos(load):
    load("\n@application()\n@function()\ndef app(x):\n    return x\n")
    messages = validate_loaded_applications()
    assert [m.severity for m in messages] == [Sev.INFO, Sev.INFO]
    assert not has_error_message(messages)
    assert messages[0].message.startswith(
        "It is recommended to add a type hint for application function parameter 'x'. "
        "This ensures that the parameter value is properly deserialized from JSON or File request inputs."
    )
    assert messages[1].message.startswith("It is recommended to add a return type hint for the application function.")


def test_method_application_skips_self_and_checks_hints(load):
    load(
        """
        @cls()
        class C:
            @application()
            @function()
            def run(self, x):
                return x
        """
    )
    messages = validate_loaded_applications()
    assert len(messages) == 2
    assert "parameter 'x'" in messages[0].message
    assert messages[0].details.class_name == "C" and messages[0].details.class_method_name == "run"
    assert messages[0].details.name == "C.run"


@pytest.mark.parametrize(
    "signature, name, kind",
    [("*, x: int", "x", "keyword-only"), ("x: int, /", "x", "positional-only")],
)
def test_unsupported_parameter_kinds(load, signature, name, kind):
    load(f"\n@application()\n@function()\ndef app({signature}) -> int:\n    return 1\n")
    m = only(validate_loaded_applications())
    assert m.severity == Sev.ERROR
    assert m.message == (
        f"Application function parameter '{name}' has unsupported parameter kind '{kind}'. "
        "Please change the parameter to be positional or keyword (the default kind for Python parameters)."
    )


def test_file_and_http_body_inside_complex_hints(load):
    from trellis import File, HttpBody

    load(
        """
        @application()
        @function()
        def app(a: list[File], b: dict[str, HttpBody]) -> File | None:
            return None
        """
    )
    messages = validate_loaded_applications()
    assert [m.severity for m in messages] == [Sev.ERROR] * 3
    assert messages[0].message == (
        f"Application function parameter 'a' uses a File object in a complex type hint '{list[File]}'. "
        "Only simple type hints like 'a: File' are supported for File objects in application function parameters. "
        "A File object cannot be embedded inside other type hints like 'a: list[File]', 'a: dict[str, File]', "
        "etc or be a part of union type hint like 'a: File | None'."
    )
    assert messages[1].message.startswith(
        "Application function parameter 'b' uses a HttpBody object in a complex type hint"
    )
    assert messages[2].message.startswith(
        f"Application function return type hint '{File | None}' uses a File object in a complex type hint. "
        "Only simple type hints like 'foo: File' are supported"
    )
    assert HttpBody  # imported for the hint text above


def test_return_hints_http_body_and_future(load):
    from trellis import Future

    load(
        """
        @application()
        @function()
        def a(x: str) -> HttpBody:
            return None

        @application()
        @function()
        def b(x: str) -> Future:
            return None

        @application()
        @function()
        def c(x: str) -> Future | None:
            return None
        """
    )
    messages = validate_loaded_applications()
    assert [m.details.name for m in messages] == ["a", "b", "c"]
    assert messages[0].message == (
        "Application function return type hint is an HttpBody. HttpBody is only supported for application "
        "function parameters. Use File or bytes-compatible JSON types for application return values."
    )
    assert messages[1].message.startswith(
        "Application function return type hint is a Future. Instead of using Future as a return type hint, "
        "please use type hint of the value returned by the Future."
    )
    assert messages[2].message.startswith(
        f"Application function return type hint '{Future | None}' uses a Future. "
        "Instead of using Future in the return type hint"
    )


def test_default_value_that_does_not_fit_its_hint(load):
    load(
        """
        @application()
        @function()
        def app(ok: float = 1.0, bad: float = {"key": "value"}) -> str:
            return ""
        """
    )
    m = only(validate_loaded_applications())
    assert m.severity == Sev.ERROR
    assert m.message.startswith(
        "Application function parameter 'bad' has a default value that can't be serialized with the type hint "
        "of the parameter <class 'float'>. Please follow Pydantic documentation and the following "
        "SerializationError to make the default value serializable to JSON format:\n"
        "Failed to serialize '{'key': 'value'}' as '<class 'float'>' to json: "
    )


def test_hints_pydantic_cannot_take(load):
    # CI installs pydantic (.ci/run): this test must run, never skip.
    assert HAS_PYDANTIC, "pydantic is not installed (.ci/run installs it; pip install pydantic)"
    load(
        prelude="import subprocess\nfrom typing import TextIO\n",
        body="""
        @application()
        @function()
        def app(p: subprocess.Popen) -> TextIO:
            return None
        """
    )
    messages = validate_loaded_applications()
    assert len(messages) == 2
    assert messages[0].message.startswith(
        "Pydantic failed to generate CoreSchema for Application function parameter 'p' with type hint "
        "'<class 'subprocess.Popen'>'. Please follow Pydantic documentation and the following Pydantic error "
        "message to make the type hint compatible.\nPydantic error message:\nUnable to generate pydantic-core schema"
    )
    assert messages[1].message.startswith(
        "Pydantic failed to generate CoreSchema for Application function return type hint '<class 'typing.TextIO'>'."
    )


@pytest.mark.parametrize(
    "init, text",
    [
        ("def __init__():\n        pass", "'C.__init__' is missing 'self' parameter. Please add 'self' parameter."),
        (
            "def __init__(this):\n        pass",
            "'C.__init__' should have its first parameter named 'self'. Please rename the first parameter to 'self'.",
        ),
        (
            "def __init__(self, p: str):\n        pass",
            "'C.__init__' can only have a single 'self' parameter. Please remove the rest of the parameters.",
        ),
    ],
)
def test_class_constructor_rules(load, init, text):
    mod = load(
        f"""
@cls()
class C:
    {init}

    @application()
    @function()
    def run(self, x: int) -> int:
        return x
"""
    )
    m = only(validate_loaded_applications())
    assert m.severity == Sev.ERROR and m.message == text
    assert m.details == ClassDetails("C", mod.__name__, mod.__file__, 3)


def test_local_class_and_local_function(load):
    mod = load(
        """
        def make():
            @cls()
            class Local:
                @application()
                @function()
                def run(self, x: int) -> int:
                    return x

            @function()
            @application()
            def local_app(x: int) -> int:
                return x

        make()
        """
    )
    messages = validate_loaded_applications()
    assert [m.message for m in messages] == [
        "Only module level classes are supported. Please move the class to module level by i.e. "
        "moving it outside of the function where it is defined.",
        "Only module level functions are supported. Please move the function to module level by i.e. "
        "moving it outside of the function where it is defined.",
    ]
    assert messages[0].details.class_name == "make.<locals>.Local"
    assert messages[1].details.name == "make.<locals>.local_app"
    assert messages[1].details.class_name is None
    assert messages[1].details.source_file_path == mod.__file__


def test_method_of_class_without_cls_decorator(load):
    load(
        """
        class Plain:
            @application()
            @function()
            def run(self, x: int) -> None:
                pass
        """
    )
    m = only(validate_loaded_applications())
    assert m.message == "Please add @cls() decorator to class 'Plain' where the function is defined."
    assert (m.details.name, m.details.class_name, m.details.class_method_name) == ("Plain.run", "Plain", "run")


def test_method_in_nested_class(load):
    load(
        """
        class Outer:
            @cls()
            class Inner:
                @function()
                @application()
                def run(self, x: int) -> int:
                    return x
        """
    )
    m = only(validate_loaded_applications())
    assert m.message == (
        "Function is defined inside a nested class. Nested classes are not supported. "
        "Please move the function to a top level class."
    )
    assert m.details.class_name == "Outer.Inner"


@pytest.mark.parametrize("params", ["", "this, x"])
def test_method_without_self(load, params):
    load(
        f"""
@cls()
class C:
    @function()
    def step({params}):
        return 1

    @application()
    @function()
    def run(self, x: int) -> int:
        return x
"""
    )
    m = only(validate_loaded_applications())
    assert m.message == (
        "Function is a class method so it needs a 'self' parameter. "
        "Please add 'self' as the first parameter of the function."
    )
    assert m.details.name == "C.step"


def test_same_function_name_in_different_files(load):
    first = load("\n@application()\n@function()\ndef shared(x: str) -> str:\n    return x\n")
    second = load("\n@application()\n@function()\ndef shared(x: str) -> str:\n    return x\n")
    m = only(validate_loaded_applications())
    assert m.severity == Sev.ERROR
    assert m.message.startswith("Function 'shared' is defined in files: ")
    assert first.__file__ in m.message and second.__file__ in m.message
    assert m.message.endswith(
        "Functions with the same names can't be defined in different files. Please rename the functions."
    )
    assert m.details.source_file_path == second.__file__


def test_same_class_name_in_different_files(load):
    source = "\n@cls()\nclass Same:\n    @application()\n    @function()\n    def run(self, x: str) -> str:\n        return x\n"
    first = load(source)
    second = load(source)
    m = only(validate_loaded_applications())
    assert m.message.startswith("Class 'Same' is defined in files: ")
    assert first.__file__ in m.message and second.__file__ in m.message
    assert m.message.endswith(
        "Classes with the same names can't be defined in different files. Please rename the classes."
    )
    assert m.details == ClassDetails("Same", second.__name__, second.__file__, 3)


def test_configuration_limits(load):
    load(
        """
        @application(tags={"": "v"}, retries=Retries(max_retries=11), region="mars")
        @function(gpu="H100:0", retries=Retries(max_retries=12), timeout=100_000)
        def app(x: int) -> int:
            return x
        """
    )
    messages = validate_loaded_applications()
    assert all(m.severity == Sev.ERROR for m in messages)
    assert {m.message for m in messages} == {
        "Function timeout must be an integer between 1 and 86400 seconds.",
        "Function gpu must be a GPU model or list of GPU models, optionally followed by a positive integer count.",
        "Function retries max_retries must be an integer between 0 and 10.",
        "Application tags require non-empty string keys and string values.",
        "Application retries max_retries must be an integer between 0 and 10.",
        "Application region must be 'us-east-1', 'eu-west-1', or None.",
    }


def test_format_validation_messages(load):
    mod = load("\n\n@application()\ndef app(x: int) -> int:\n    return x\n")
    klass = load("\n@cls()\nclass K:\n    def __init__(self, a):\n        pass\n")
    formatted = format_validation_messages(validate_loaded_applications())
    assert formatted[0] == {
        "severity": "error",
        "message": "'K.__init__' can only have a single 'self' parameter. Please remove the rest of the parameters.",
        "location": f"{klass.__name__}:3:K: ",
    }
    assert formatted[1]["location"] == f"{mod.__name__}:4:app: "
    assert formatted[1]["message"].startswith("Application function is missing @function() decorator.")


def test_tensorlake_module_paths():
    import tensorlake.applications as tl
    from tensorlake.applications.function.introspect import ClassDetails as TLClassDetails
    from tensorlake.applications.function.introspect import FunctionDetails as TLFunctionDetails
    from tensorlake.applications.validation import ValidationMessageSeverity, validate_loaded_applications as v

    import trellis

    assert TLFunctionDetails is FunctionDetails and TLClassDetails is ClassDetails
    assert v is validate_loaded_applications and ValidationMessageSeverity is Sev
    # Importing the `function` package must not hide the @function decorator.
    assert tl.function is trellis.function
