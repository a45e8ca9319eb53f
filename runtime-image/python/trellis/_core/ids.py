"""Durable call ids.

A request's root call is named by the request id. A child's id is
`<request id>-<16 chars>` where the 16 chars are the first 16 characters of the
lowercase, unpadded RFC 4648 base32 encoding of SHA-256("<parent id>/<seq>")
(UTF-8), and seq is the parent's 0-based operation number in the attempt (map
item i and reduce step k use seq = i and k under the map/reduce call). A retried
parent that makes the same calls in the same order gets the same ids, and ids
stay the same length however deep a chain of calls goes.
"""

import base64
import hashlib
import re
import secrets

CHILD_SUFFIX_LEN = 16
MAX_REQUEST_ID_LEN = 63
_REQUEST_ID = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def new_request_id() -> str:
    return "r" + secrets.token_hex(8)


def check_request_id(request_id: str) -> None:
    if not isinstance(request_id, str) or len(request_id) > MAX_REQUEST_ID_LEN or not _REQUEST_ID.match(request_id):
        raise ValueError(
            f"request id must be a lowercase RFC 1123 label of at most {MAX_REQUEST_ID_LEN} "
            f"characters, got {request_id!r}"
        )


def child_id(request_id: str, parent_id: str, seq: int) -> str:
    digest = hashlib.sha256(f"{parent_id}/{seq}".encode()).digest()
    suffix = base64.b32encode(digest).decode("ascii").lower().rstrip("=")[:CHILD_SUFFIX_LEN]
    return f"{request_id}-{suffix}"
