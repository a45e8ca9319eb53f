"""Spilled values (PROTOCOL.md §4): a value too large for a frame travels as a file in the run
volume's values directory, {"spill": {"path", "size"}}, holding the value's blob document (the
UTF-8 JSON the sidecar uploads as is: {"value"}, {"pickle"}, {"raw"} with data last, {"list"}).

Bytes are base64-encoded and decoded in chunks, so a File costs its bytes once in memory, never a
second time as one base64 string. Active only in a worker whose sidecar offered it in `welcome`.
"""

import base64
import itertools
import json
import os
import threading
from typing import Any

# Multiple of 3 (encode) and of 4 (decode) so chunks never split a base64 quantum.
CHUNK = 3 * 4 * 256 * 1024  # 3 MiB

_lock = threading.Lock()
_config: "Spill | None" = None


class Spill:
    def __init__(self, directory: str, threshold: int) -> None:
        self.dir = directory
        self.threshold = threshold
        self._seq = itertools.count()
        os.makedirs(directory, exist_ok=True)

    def _new_path(self) -> str:
        # w<pid>-: the sidecar removes a lost worker's leftovers by this prefix.
        return os.path.join(self.dir, f"w{os.getpid()}-{next(self._seq)}.json")

    def _finish(self, path: str) -> dict:
        return {"spill": {"path": path, "size": os.path.getsize(path)}}

    def raw(self, content: bytes, content_type: str) -> dict:
        path = self._new_path()
        view = memoryview(content)
        with open(path, "wb") as f:
            f.write(json.dumps({"raw": {"contentType": content_type, "data": ""}},
                               separators=(",", ":"), ensure_ascii=False).encode("utf-8")[:-4])  # drop `""}}`
            f.write(b'"')
            _write_base64(f, view)
            f.write(b'"}}')
        return self._finish(path)

    def pickled(self, data: bytes) -> dict:
        path = self._new_path()
        view = memoryview(data)
        with open(path, "wb") as f:
            f.write(b'{"pickle":"')
            _write_base64(f, view)
            f.write(b'"}')
        return self._finish(path)

    def document(self, form: dict) -> dict:
        """Any other form ({json}, {list}) written as its blob document."""
        path = self._new_path()
        with open(path, "w", encoding="utf-8") as f:
            json.dump(to_document(form), f, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return self._finish(path)


def configure(directory: str | None, threshold: int | None) -> None:
    """The worker after `welcome`: spill values over `threshold` bytes into `directory` (None: never)."""
    global _config
    with _lock:
        _config = Spill(directory, int(threshold)) if directory and threshold else None


def active() -> "Spill | None":
    return _config


def b64_size(n: int) -> int:
    return (n + 2) // 3 * 4


def to_document(form: dict) -> dict:
    """Worker form -> blob document ({json} is {value}, recursively inside lists)."""
    (tag, payload), = form.items()
    if tag == "json":
        return {"value": payload}
    if tag == "list":
        return {"list": [to_document(item) for item in payload]}
    return {tag: payload}


def from_document(doc: Any) -> dict:
    if not isinstance(doc, dict) or len(doc) != 1:
        raise ValueError("a spill file must hold one of value, pickle, raw or list")
    (tag, payload), = doc.items()
    if tag == "value":
        return {"json": payload}
    if tag == "list" and isinstance(payload, list):
        return {"list": [from_document(item) for item in payload]}
    if tag in ("pickle", "raw"):
        return {tag: payload}
    raise ValueError(f"a spill file holds an unknown form {tag!r}")


_RAW_PREFIX = b'{"raw":'
_PICKLE_PREFIX = b'{"pickle":"'


def _write_base64(f, view: memoryview) -> None:
    """Base64 of `view` in CHUNK-sized pieces (a multiple of 3 bytes: no padding in between)."""
    for i in range(0, len(view), CHUNK):
        f.write(base64.b64encode(view[i:i + CHUNK]))


def _decode_b64_stream(f, out: bytearray) -> None:
    """Base64 from `f` up to the closing quote, decoded in chunks into `out`."""
    rest = b""
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            raise ValueError("spill file ends inside its base64 data")
        end = chunk.find(b'"')
        data = rest + (chunk if end < 0 else chunk[:end])
        if end >= 0:
            out += base64.b64decode(data, validate=True)
            f.seek(f.tell() - (len(chunk) - end - 1))
            return
        cut = len(data) - len(data) % 4
        out += base64.b64decode(data[:cut], validate=True)
        rest = data[cut:]


def read(spec: Any, remove: bool = True) -> tuple[str, Any]:
    """A spill file -> ("raw", (bytes, content type)) | ("pickle", bytes) | ("form", form).
    The receiver removes the file once read (PROTOCOL.md §4)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
        raise ValueError("malformed spill form (needs path and size)")
    path = spec["path"]
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            f.seek(0)
            if head.startswith(_PICKLE_PREFIX):
                f.seek(len(_PICKLE_PREFIX))
                out = bytearray()
                _decode_b64_stream(f, out)
                return "pickle", bytes(out)
            if head.startswith(_RAW_PREFIX):
                return "raw", _read_raw(f)
            return "form", from_document(json.load(f))
    finally:
        if remove:
            try:
                os.unlink(path)
            except OSError:
                pass


def _read_raw(f) -> tuple[bytes, str]:
    # {"raw":{"contentType":"<json string>","data":"<base64>"}}: the type is short, data is last.
    head = f.read(4096)
    marker = head.find(b',"data":"')
    if marker < 0:
        # Not the canonical order: a small document can be parsed whole.
        f.seek(0)
        doc = json.load(f)
        raw = doc["raw"]
        return base64.b64decode(raw["data"], validate=True), raw["contentType"]
    meta = json.loads(head[len(_RAW_PREFIX):marker].decode("utf-8") + "}")
    f.seek(marker + len(b',"data":"'))
    out = bytearray()
    _decode_b64_stream(f, out)
    content_type = meta.get("contentType")
    if not isinstance(content_type, str) or not content_type:
        raise ValueError("spilled raw value has no contentType")
    return bytes(out), content_type
