"""Applications for tests/test_tensorlake_compat_api.py, run locally and in `python -m trellis.worker`."""

from typing import Any

from tensorlake.applications import File, HttpBody, RequestError, application, function

try:
    from pydantic import BaseModel
except ImportError:  # the pydantic cases are skipped then
    BaseModel = None


@function(timeout=9, description="function above application")
@application(tags={"k": "v"})
def function_above_application(x: int) -> int:
    return x + 1


@application()
@function()
def no_args() -> str:
    return "success"


@application()
@function()
def mixed(a: int, b: str = "b", c: float = 1.5) -> str:
    return f"a={a!r},b={b!r},c={c!r}"


@application()
@function()
def list_of_ints(numbers: list[int]) -> str:
    return "success"


@application()
@function()
def returns_not_none() -> None:
    return 23456


@application()
@function()
def any_echo(arg: Any) -> Any:
    return arg


@application()
@function()
def untyped_echo(arg):
    return arg


@application()
@function()
def set_echo(arg: set[str]) -> set[str]:
    if not isinstance(arg, set):
        raise RequestError(f"not a set: {type(arg).__name__}")
    return arg


@application()
@function()
def tuple_echo(arg: tuple[str, int]) -> tuple[str, int]:
    if not isinstance(arg, tuple):
        raise RequestError(f"not a tuple: {type(arg).__name__}")
    return arg


@application()
@function()
def int_keys(arg: dict[int, str]) -> list[int]:
    return sorted(arg)


@application()
@function()
def file_size(f: File) -> int:
    return len(f.content)


if BaseModel is not None:

    class Item(BaseModel):
        name: str
        size: int

    class Folder(BaseModel):
        path: str
        items: list[Item]

    @application()
    @function()
    def folder_in(folder: Folder, item: Item) -> str:
        if not isinstance(folder, Folder) or not isinstance(item, Item):
            raise RequestError("not models")
        return f"{folder.path}:{[i.size for i in folder.items]}:{item.name}"

    @application()
    @function()
    def folder_out() -> Folder:
        return Folder(path="/out", items=[Item(name="a", size=1)])

    @application()
    @function()
    def folder_out_dict() -> Folder:
        return {"path": "/out", "items": [{"name": "a", "size": 1}]}

    @application()
    @function()
    def model_as_any() -> Any:
        return Item(name="x", size=2)


__all__ = ["HttpBody"]


@function()
def concat(a: str, b: str) -> str:
    return a + b


@application()
@function()
def reduce_a_string(text: str) -> str:
    # Any iterable is taken as list(items): a str reduces over its characters (Tensorlake).
    return concat.reduce(text)


@application()
@function()
def function_as_argument(x: int) -> str:
    from tensorlake.applications import SerializationError

    try:
        concat(concat, "x")
    except SerializationError as e:
        return str(e)
    return "no error"
