"""Tensorlake documents `tensorlake.applications.interface.<module>` as public: those paths import."""

import importlib

import pytest


@pytest.mark.parametrize(
    "module,names",
    [
        ("exceptions", ["SDKUsageError", "RequestError", "RequestFailed", "TimeoutError"]),
        ("futures", ["Future"]),
        ("file", ["File"]),
        ("http", ["HttpBody"]),
        ("request_context", ["RequestContext"]),
        ("retries", ["Retries"]),
        ("decorators", ["application", "function"]),
    ],
)
def test_interface_submodule_is_the_sdk_module(module, names):
    import trellis

    tl_mod = importlib.import_module(f"tensorlake.applications.interface.{module}")
    assert tl_mod is importlib.import_module(f"trellis.interface.{module}")
    for name in names:
        assert getattr(tl_mod, name) is getattr(trellis, name)


def test_error_raised_through_one_path_is_caught_through_the_other():
    from tensorlake.applications.interface.exceptions import SDKUsageError as ViaInterface

    import trellis

    with pytest.raises(ViaInterface):
        raise trellis.SDKUsageError("x")


def test_function_config_has_tensorlakes_function_name():
    from tensorlake.applications import application, function

    @application()
    @function()
    def named_app(x: int) -> int:
        return x

    assert named_app._function_config.function_name == "named_app" == named_app._function_config.name
