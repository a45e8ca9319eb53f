"""Request ids, and durable call ids.

A request's root call is named by the request id (a lowercase RFC 1123 label). Children are
named by `child_id`, which is the contract's `trellis.protocol.child_name` (PROTOCOL.md §7):
a retried parent that makes the same calls in the same order gets the same ids.
"""

import re
import secrets

from ..protocol.names import CHILD_SUFFIX_LEN, child_name as child_id

__all__ = ["CHILD_SUFFIX_LEN", "MAX_REQUEST_ID_LEN", "check_request_id", "child_id", "new_request_id"]

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
