"""The error hierarchy users see (names and meanings follow Tensorlake Applications)."""


class TensorlakeException(Exception):
    """Base class of every exception raised by the SDK."""


class TensorlakeError(TensorlakeException):
    """Base class of every error in an application."""


class RequestNotFinished(TensorlakeError):
    def __init__(self, message: str = "Request is still in progress, its output is not ready yet.") -> None:
        super().__init__(message)


class RequestFailed(TensorlakeError):
    """The request failed; the message is the reason (`function_error`, `function_timeout`, ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def reason(self) -> str:
        return str(self.args[0]) if self.args else ""


class RequestError(RequestFailed):
    """Raised by a function to fail the whole request with this exact message; never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    @property
    def message(self) -> str:
        return self.args[0]

    @property
    def reason(self) -> str:
        return "request_error"


class RemoteAPIError(TensorlakeError):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code

    def __str__(self) -> str:
        return f"{super().__str__()} (Status Code: {self.status_code})"


class SDKUsageError(TensorlakeError):
    """The SDK was used against one of its rules."""


class SerializationError(TensorlakeError):
    """A value could not be serialized (inputs, outputs, arguments, state)."""


class DeserializationError(TensorlakeError):
    """A value could not be deserialized."""


class InternalError(TensorlakeError):
    """A bug or an infrastructure fault inside the SDK or runtime."""


class FunctionError(TensorlakeError):
    """A child call failed; raised in the caller that waits for it (catchable there).

    The child's error details are kept as attributes.
    """

    def __init__(
        self,
        message: str,
        *,
        function_name: str | None = None,
        call_id: str | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
        traceback: str | None = None,
        reason: str = "function_error",
    ) -> None:
        super().__init__(message)
        self.function_name = function_name
        self.call_id = call_id
        self.error_type = error_type
        self.error_message = error_message
        self.traceback = traceback
        self.reason = reason

    def __reduce__(self):
        kwargs = dict(
            function_name=self.function_name,
            call_id=self.call_id,
            error_type=self.error_type,
            error_message=self.error_message,
            traceback=self.traceback,
            reason=self.reason,
        )
        return (_rebuild_function_error, (self.args[0] if self.args else "", kwargs))


def _rebuild_function_error(message, kwargs):
    return FunctionError(message, **kwargs)


class TimeoutError(TensorlakeError):  # noqa: A001 - the SDK's name for it
    """A wait (`Future.result(timeout=...)`, `Future.wait`) expired."""

    def __init__(self, message: str = "Timed out.") -> None:
        super().__init__(message)


# Trellis name for the base error.
TrellisError = TensorlakeError
