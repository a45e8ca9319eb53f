"""HTTP pieces visible to functions: the request's headers."""

from collections.abc import Iterable, Iterator, Mapping


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
        return iter(self._lookup)

    def __len__(self) -> int:
        return len(self._lookup)

    def get_all(self, key: str) -> list[str]:
        return list(self._lookup.get(key.lower(), []))

    def __eq__(self, other) -> bool:
        if isinstance(other, Mapping):
            return {k: self[k] for k in self} == {str(k).lower(): v for k, v in other.items()}
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({dict((k, self[k]) for k in self)!r})"
