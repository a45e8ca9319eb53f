"""Decorator settings are validated where they are written; errors name the parameter and rule."""

import pytest

from tensorlake.applications import Retries, SDKUsageError, application, cls, function, run_local_application


def test_bare_function_decorator_is_a_clear_error():
    with pytest.raises(SDKUsageError, match=r"@function must be called: write @function\(\) above 'f'"):

        @function
        def f(x):
            return x


def test_bare_application_decorator_is_a_clear_error():
    with pytest.raises(SDKUsageError, match=r"@application must be called"):

        @application
        @function()
        def f(x):
            return x


def test_bare_cls_decorator_is_a_clear_error():
    with pytest.raises(SDKUsageError, match=r"@cls must be called"):

        @cls
        class C:
            pass


def test_application_may_be_stacked_either_way_on_function():
    # Tensorlake accepts @function() above @application() too.
    @function(timeout=7)
    @application()
    def f(x):
        return x

    assert f._application_config is not None and f._function_config.timeout == 7
    with pytest.raises(SDKUsageError, match=r"applied twice"):
        function()(f)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"cpu": 0}, r"cpu must be > 0"),
        ({"cpu": "2"}, r"cpu must be a finite number"),
        ({"memory": -1}, r"memory must be > 0"),
        ({"ephemeral_disk": float("inf")}, r"ephemeral_disk must be a finite number"),
        ({"timeout": 0}, r"timeout must be > 0"),
        ({"timeout": True}, r"timeout must be a finite number"),
        ({"gpu": 3}, r"gpu must be a list of non-empty strings"),
        ({"secrets": "TOKEN"}, r"secrets must be a list of non-empty strings"),
        ({"retries": 3}, r"retries must be a Retries object"),
        ({"description": 5}, r"description must be a string"),
        ({"min_containers": -1}, r"min_containers must be >= 0"),
        ({"max_containers": 0}, r"max_containers must be > 0"),
        ({"max_containers": 1.5}, r"max_containers must be an integer"),
        ({"min_containers": 3, "max_containers": 2}, r"min_containers \(3\) must be <= max_containers \(2\)"),
        ({"warm_containers": 4, "max_containers": 2}, r"warm_containers \(4\) must be <= max_containers"),
        ({"max_concurrency": 0}, r"max_concurrency must be > 0"),
    ],
)
def test_function_settings_are_validated(kwargs, pattern):
    with pytest.raises(SDKUsageError, match=pattern):
        function(**kwargs)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"max_retries": -1}, r"Retries.max_retries must be an integer >= 0"),
        ({"max_retries": 1.5}, r"Retries.max_retries must be an integer"),
        ({"initial_delay": -1}, r"Retries.initial_delay must be >= 0"),
        ({"delay_multiplier": 0.5}, r"Retries.delay_multiplier must be >= 1"),
        ({"initial_delay": 5, "max_delay": 1}, r"Retries.max_delay \(1\) must be >= Retries.initial_delay"),
    ],
)
def test_retries_are_validated(kwargs, pattern):
    with pytest.raises(SDKUsageError, match=pattern):
        Retries(**kwargs)


def test_retry_delays_grow_and_cap():
    r = Retries(max_retries=5, initial_delay=1, max_delay=5, delay_multiplier=2)
    assert [r.delay_before(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_application_settings_are_validated():
    with pytest.raises(SDKUsageError, match=r"tags must be a dict of string keys to string values"):
        application(tags={"a": 1})
    with pytest.raises(SDKUsageError, match=r"@application\(\) retries must be a Retries object"):
        application(retries=2)


def test_cls_init_timeout_is_validated():
    with pytest.raises(SDKUsageError, match=r"init_timeout must be > 0"):
        cls(init_timeout=0)


def test_function_keeps_metadata_and_settings():
    @function(description="doubles", cpu=2, memory=4, timeout=10, retries=Retries(max_retries=3),
              min_containers=1, max_containers=5, max_concurrency=8)
    def doubler(x: int) -> int:
        """Docstring."""
        return x * 2

    cfg = doubler._function_config
    assert doubler.__name__ == "doubler" and doubler.__doc__ == "Docstring."
    assert (cfg.name, cfg.cpu, cfg.memory, cfg.timeout, cfg.max_concurrency) == ("doubler", 2.0, 4.0, 10.0, 8)
    assert cfg.retries.max_retries == 3 and (cfg.min_containers, cfg.max_containers) == (1, 5)


def test_wrong_arguments_fail_when_the_call_is_made():
    @function()
    def two(a, b):
        return a + b

    with pytest.raises(SDKUsageError, match=r"call of function 'two': missing a required argument: 'b'"):
        two.future(1)


def test_running_a_plain_function_as_application_is_an_error():
    @function()
    def plain(x):
        return x

    with pytest.raises(SDKUsageError, match=r"^Tensorlake Function 'plain' is not an application function and cannot be run as an application\. To make it an application function, add @application\(\) decorator to it\.$"):
        run_local_application(plain, 1)
    with pytest.raises(SDKUsageError, match=r"^Function with name 'nope_nothing' is not defined$"):
        run_local_application("nope_nothing", 1)


def test_calling_a_function_outside_a_request_is_an_error():
    @function()
    def lonely(x):
        return x

    with pytest.raises(SDKUsageError, match=r"Tensorlake SDK was called outside of a Tensorlake Function thread or process"):
        lonely(1)


@cls(init_timeout=5)
class Greeter:
    inits = 0

    def __init__(self):
        Greeter.inits += 1
        self.greeting = "Hello"

    @function()
    def greet(self, name: str) -> str:
        return f"{self.greeting}, {name}"


@application()
@function()
def greet_twice(name: str) -> list:
    return [Greeter().greet(name), Greeter().greet(name + "!")]


def test_cls_methods_share_one_instance_built_with_the_original_init():
    before = Greeter.inits
    assert run_local_application(greet_twice, "Ada").output() == ["Hello, Ada", "Hello, Ada!"]
    assert Greeter.inits - before <= 1
    assert Greeter.greet._function_config.class_name == "Greeter"
    assert Greeter.greet._name == "Greeter.greet"


def test_image_is_recorded_and_validated():
    from tensorlake.applications import Image

    image = Image(name="ml", tag="v1").run("pip install numpy").env("MODE", "fast").workdir("/app")

    @function(image=image)
    def uses_image(x):
        return x

    assert uses_image._function_config.image is image
    assert image.dockerfile() == (
        "FROM python:3.11-slim-bookworm\nRUN pip install numpy\nENV MODE=\"fast\"\nWORKDIR /app\n"
    )
    with pytest.raises(SDKUsageError, match=r"@function\(\) image must be an Image or None"):
        function(image="ml:v1")
