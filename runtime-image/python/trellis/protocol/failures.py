"""Failure reasons (PROTOCOL.md §8), the same table as protocol/src/failures.ts.

`kind` is the runtime API's failure kind a sidecar reports for a worker failure of that reason
(None: no worker sends it); `retry` is how the operator treats it: "policy" (the call's retries),
"infrastructure" (re-run without spending them) or "never".
"""

from typing import NamedTuple


class FailureReason(NamedTuple):
    kind: str | None
    retry: str


FAILURE_REASONS: dict[str, FailureReason] = {
    "function_error": FailureReason("user", "policy"),
    "function_timeout": FailureReason("timeout", "policy"),
    "request_error": FailureReason("request_error", "never"),
    "unknown_function": FailureReason("user", "never"),
    "worker_shutdown": FailureReason("infrastructure", "infrastructure"),
    "internal": FailureReason("user", "policy"),
    "infrastructure": FailureReason("infrastructure", "infrastructure"),
    "input_failed": FailureReason(None, "never"),
    "cancelled": FailureReason(None, "never"),
    "invalid_call": FailureReason(None, "never"),
    "object_refused": FailureReason(None, "never"),
}

# The reasons a worker raises itself. A `failure` may also relay a failed child's reason (any of
# FAILURE_REASONS, e.g. input_failed): a function that does not catch it fails with it.
WORKER_FAILURE_REASONS = (
    "function_error",
    "request_error",
    "function_timeout",
    "unknown_function",
    "worker_shutdown",
    "internal",
)


def runtime_error(type_: str, message: str, function: str | None, call: str, *, reason: str,
                  retryable: bool) -> dict:
    """An Error the runtime raises itself (no user traceback)."""
    return {"type": type_, "module": "trellis", "message": message, "traceback": "", "function": function,
            "call": call, "request_error": False, "reason": reason, "retryable": retryable}
