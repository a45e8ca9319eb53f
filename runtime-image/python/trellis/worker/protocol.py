"""Frames of the worker <-> sidecar protocol (see runtime-image/PROTOCOL.md).

A frame is a 4-byte unsigned big-endian length N, then N bytes of UTF-8 JSON
holding one object with a string "type".
"""

import json
import socket
import struct

from ..protocol import MAX_FRAME_BYTES, PROTOCOL_VERSION

__all__ = ["MAX_FRAME_BYTES", "PROTOCOL_VERSION", "ProtocolError", "encode_frame", "read_frame"]

_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    pass


def encode_frame(message: dict) -> bytes:
    body = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    return _HEADER.pack(len(body)) + body


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(sock: socket.socket) -> dict | None:
    """The next message, or None when the peer closed the connection."""
    header = _read_exact(sock, _HEADER.size)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    if length > MAX_FRAME_BYTES:
        raise ProtocolError(f"incoming frame of {length} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    body = _read_exact(sock, length)
    if body is None:
        return None
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"frame is not UTF-8 JSON: {e}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("frame must hold a JSON object with a string 'type'")
    return message
