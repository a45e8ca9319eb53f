import math

from .exceptions import SDKUsageError


def _number(name: str, value, *, minimum: float, allow_equal: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SDKUsageError(f"Retries.{name} must be a finite number, got {value!r}")
    if value < minimum or (not allow_equal and value == minimum):
        rel = ">=" if allow_equal else ">"
        raise SDKUsageError(f"Retries.{name} must be {rel} {minimum}, got {value!r}")
    return float(value)


class Retries:
    """Retry policy: `max_retries` more attempts after the first, waiting
    `min(initial_delay * delay_multiplier**(n-1), max_delay)` seconds before retry n."""

    def __init__(
        self,
        max_retries: int = 0,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
        delay_multiplier: float = 2.0,
    ):
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise SDKUsageError(f"Retries.max_retries must be an integer >= 0, got {max_retries!r}")
        self.max_retries = max_retries
        self.initial_delay = _number("initial_delay", initial_delay, minimum=0)
        self.max_delay = _number("max_delay", max_delay, minimum=0)
        self.delay_multiplier = _number("delay_multiplier", delay_multiplier, minimum=1)
        if self.max_delay < self.initial_delay:
            raise SDKUsageError(
                f"Retries.max_delay ({max_delay!r}) must be >= Retries.initial_delay ({initial_delay!r})"
            )

    def delay_before(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        return min(self.initial_delay * self.delay_multiplier ** max(retry - 1, 0), self.max_delay)

    def to_dict(self) -> dict:
        return {
            "max_retries": self.max_retries,
            "initial_delay": self.initial_delay,
            "max_delay": self.max_delay,
            "delay_multiplier": self.delay_multiplier,
        }

    def __repr__(self) -> str:
        return (
            f"Retries(max_retries={self.max_retries}, initial_delay={self.initial_delay}, "
            f"max_delay={self.max_delay}, delay_multiplier={self.delay_multiplier})"
        )
