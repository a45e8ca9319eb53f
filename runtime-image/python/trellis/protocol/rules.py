"""Small composable checks for JSON messages, each naming the field path and the rule it broke.

A check is `check(value, path)`; it returns nothing or raises MessageError. Paths look like
`calls[0].args[1].list[2]` (the zod issue path of protocol/src/worker-messages.ts, joined the
same way), so both languages name the same field.
"""

import math
import re
from typing import Any, Callable

Check = Callable[[Any, str], None]
MAX_SAFE_INTEGER = 2**53 - 1


class MessageError(ValueError):
    """A message that breaks PROTOCOL.md; `path` is the field, `rule` what it must be."""

    def __init__(self, path: str, rule: str, message_type: str | None = None) -> None:
        self.path = path
        self.rule = rule
        self.message_type = message_type
        super().__init__(self._text())

    def _text(self) -> str:
        where = ".".join(p for p in (self.message_type, self.path) if p) or "message"
        return f"{where}: {self.rule}"

    def __str__(self) -> str:
        return self._text()


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def string(*, non_empty: bool = False) -> Check:
    rule = "must be a non-empty string" if non_empty else "must be a string"

    def check(v: Any, path: str) -> None:
        if type(v) is not str or (non_empty and not v):
            raise MessageError(path, rule)

    return check


def pattern(regex: str, rule: str, max_len: int) -> Check:
    match = re.compile(regex).fullmatch

    def check(v: Any, path: str) -> None:
        if type(v) is not str or len(v) > max_len or not match(v):
            raise MessageError(path, rule)

    return check


def _is_number(v: Any) -> bool:
    # bool is an int in Python but not a number in JSON; json.loads also yields NaN/Infinity.
    return type(v) is int or (type(v) is float and math.isfinite(v))


def number(*, minimum: float = 0, exclusive: bool = False) -> Check:
    rule = f"must be a finite number {'>' if exclusive else '>='} {minimum:g}"

    def check(v: Any, path: str) -> None:
        if not _is_number(v) or v < minimum or (exclusive and v == minimum):
            raise MessageError(path, rule)

    return check


def integer(*, minimum: int = 0) -> Check:
    rule = f"must be an integer >= {minimum}"

    def check(v: Any, path: str) -> None:
        # 1.0 in JSON text is the integer 1 in JavaScript: accept it here too. Beyond 2^53 - 1
        # JavaScript cannot hold an integer exactly.
        if not _is_number(v) or v != int(v) or v < minimum or v > MAX_SAFE_INTEGER:
            raise MessageError(path, rule)

    return check


def boolean(v: Any, path: str) -> None:
    if type(v) is not bool:
        raise MessageError(path, "must be a boolean")


def anything(v: Any, path: str) -> None:
    pass


def one_of(*values: str) -> Check:
    allowed = frozenset(values)
    rule = f"must be one of {'|'.join(values)}"

    def check(v: Any, path: str) -> None:
        if type(v) is not str or v not in allowed:
            raise MessageError(path, rule)

    return check


def nullable(inner: Check) -> Check:
    def check(v: Any, path: str) -> None:
        if v is not None:
            inner(v, path)

    return check


def array(item: Check) -> Check:
    def check(v: Any, path: str) -> None:
        if type(v) is not list:
            raise MessageError(path, "must be an array")
        for i, x in enumerate(v):
            item(x, f"{path}[{i}]")

    return check


def record(item: Check) -> Check:
    def check(v: Any, path: str) -> None:
        if type(v) is not dict:
            raise MessageError(path, "must be an object")
        for k, x in v.items():
            item(x, join(path, k))

    return check


def obj(required: dict[str, Check], optional: dict[str, Check] | None = None,
        refine: Check | None = None) -> Check:
    """An object with these fields; unknown fields are ignored (forward compatibility)."""
    optional = optional or {}

    def check(v: Any, path: str) -> None:
        if type(v) is not dict:
            raise MessageError(path, "must be an object")
        for name, field in required.items():
            if name not in v:
                raise MessageError(join(path, name), "is required")
            field(v[name], join(path, name))
        for name, field in optional.items():
            if name in v:
                field(v[name], join(path, name))
        if refine is not None:
            refine(v, path)

    return check
