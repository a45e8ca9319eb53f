"""The Python twin of the contract package `protocol/` (TypeScript): what crosses the socket
between worker and sidecar (runtime-image/PROTOCOL.md). Standard library only; both sides check
the same fixtures in protocol/fixtures/."""

from .failures import FAILURE_REASONS, WORKER_FAILURE_REASONS, FailureReason, runtime_error
from .messages import SIDECAR_MESSAGES, WORKER_MESSAGES, validate_message
from .names import CHILD_SUFFIX_LEN, child_name
from .rules import MessageError

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024

__all__ = [
    "CHILD_SUFFIX_LEN",
    "FAILURE_REASONS",
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "SIDECAR_MESSAGES",
    "WORKER_FAILURE_REASONS",
    "WORKER_MESSAGES",
    "FailureReason",
    "MessageError",
    "child_name",
    "runtime_error",
    "validate_message",
]
