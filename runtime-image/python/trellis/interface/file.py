from .exceptions import SDKUsageError


class File:
    """Binary content with a MIME type, usable as a function input or output."""

    def __init__(self, content: bytes, content_type: str):
        if not isinstance(content, (bytes, bytearray)):
            raise SDKUsageError(f"File.content must be bytes, got {type(content).__name__}")
        if not isinstance(content_type, str) or not content_type:
            raise SDKUsageError(f"File.content_type must be a non-empty string, got {content_type!r}")
        self._content = bytes(content)
        self._content_type = content_type

    @property
    def content(self) -> bytes:
        return self._content

    @property
    def content_type(self) -> str:
        return self._content_type

    def __eq__(self, other) -> bool:
        return isinstance(other, File) and (self._content, self._content_type) == (
            other._content,
            other._content_type,
        )

    def __hash__(self) -> int:
        return hash((self._content, self._content_type))

    def __repr__(self) -> str:
        return f"File(content_type={self._content_type!r}, content={self._content[:20]!r}...)"
