"""`tensorlake.applications.validation`: Trellis's validator under Tensorlake's module path."""

from trellis.validation import (  # noqa: F401
    ValidationMessage,
    ValidationMessageSeverity,
    format_validation_messages,
    has_error_message,
    validate_loaded_applications,
)

__all__ = [
    "ValidationMessageSeverity",
    "ValidationMessage",
    "validate_loaded_applications",
    "has_error_message",
    "format_validation_messages",
]
