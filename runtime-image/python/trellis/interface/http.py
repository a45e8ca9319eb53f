"""HTTP pieces visible to functions: the request's headers and a raw request body."""

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any


class Headers(Mapping):
    """Read-only, case-insensitive header mapping (the last value wins for repeated names)."""

    def __init__(self, headers: Mapping | Iterable[tuple[str, str]] | None = None) -> None:
        pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
        self._items = tuple((str(k), str(v)) for k, v in pairs)
        self._lookup: dict[str, list[str]] = {}
        for name, value in self._items:
            self._lookup.setdefault(name.lower(), []).append(value)

    def __getitem__(self, key: str) -> str:
        return self._lookup[key.lower()][-1]

    def __iter__(self) -> Iterator[str]:
        # Names as first written, one per case-insensitive name.
        seen: set[str] = set()
        for name, _ in self._items:
            if name.lower() not in seen:
                seen.add(name.lower())
                yield name

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lookup

    def get(self, key: str, default: Any = None) -> Any:
        values = self._lookup.get(key.lower()) if isinstance(key, str) else None
        return default if not values else values[-1]

    def getlist(self, key: str) -> list[str]:
        """Every value of a repeated header, in the order received."""
        return list(self._lookup.get(key.lower(), []))

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair, repeated names included, in the order received."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._lookup)

    get_all = getlist

    def __eq__(self, other) -> bool:
        if isinstance(other, Mapping):
            return {k.lower(): self[k] for k in self} == {str(k).lower(): v for k, v in other.items()}
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({dict((k, self[k]) for k in self)!r})"


class HttpBody:
    """The raw HTTP request body given to an application parameter annotated `HttpBody`."""

    def __init__(self, content: bytes, content_type: str | None = None) -> None:
        self._content = content
        self._content_type = content_type

    @property
    def content(self) -> bytes:
        return self._content

    @property
    def content_type(self) -> str | None:
        return self._content_type

    def text(self, encoding: str = "utf-8") -> str:
        return self._content.decode(encoding)

    def json(self) -> Any:
        return json.loads(self.text())

    def __str__(self) -> str:
        return f"HttpBody(content_type={self._content_type}, content={self._content[:20]}...)"
