"""Durable call names (PROTOCOL.md §7), the same rule as protocol/src/child-names.ts.

A child of `parent` at operation `seq` is `<request>-<16 chars>`: the first 16 characters of
the lowercase, unpadded RFC 4648 base32 of SHA-256("<parent>/<seq>") (UTF-8). The suffix has a
fixed length, so a name is len(request) + 17 characters however deep a chain of calls goes.
"""

import base64
import hashlib

CHILD_SUFFIX_LEN = 16


def child_name(request: str, parent: str, seq: int) -> str:
    digest = hashlib.sha256(f"{parent}/{seq}".encode()).digest()
    suffix = base64.b32encode(digest).decode("ascii").lower().rstrip("=")[:CHILD_SUFFIX_LEN]
    return f"{request}-{suffix}"
