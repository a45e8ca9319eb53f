"""Structured logging for functions: one JSON object per line on stdout.

The line has the logger's context and the call's fields at the root, then `level`, `event`
(the message) and `timestamp`, and `exception` (the formatted traceback) when `exc_info` is
given, as Tensorlake's Logger writes it. Logging never raises.
"""

import json
import sys
import traceback
from datetime import datetime, timezone
from enum import Enum

_JSON_TYPES = (str, int, float, bool, type(None), list, dict, tuple, Enum)


def _timestamp() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class Logger:
    def __init__(self, context: dict | None = None) -> None:
        self._context = dict(context or {})

    @classmethod
    def get_logger(cls, **context) -> "Logger":
        return cls(context)

    def bind(self, **context) -> "Logger":
        return self.__class__({**self._context, **context})

    def _format(self, level: str, message: str, fields: dict) -> str:
        record = dict(self._context)
        record.update(fields)
        record["level"] = level
        record["event"] = message
        if "exc_info" in record:
            exc = record.pop("exc_info")
            if exc is True:
                exc = sys.exc_info()
            elif isinstance(exc, BaseException):
                exc = (type(exc), exc, exc.__traceback__)
            if exc and exc != (None, None, None):
                record["exception"] = "".join(traceback.format_exception(*exc))
        for key, value in record.items():
            if not isinstance(value, _JSON_TYPES):
                record[key] = str(value)
        record["timestamp"] = _timestamp()
        return json.dumps(record, default=str)

    def _log(self, level: str, message: str, fields: dict) -> None:
        try:
            line = self._format(level, message, fields)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        except Exception:  # logging never fails the function
            pass

    def info(self, message: str, **fields) -> None:
        self._log("info", message, fields)

    def error(self, message: str, **fields) -> None:
        self._log("error", message, fields)

    def warning(self, message: str, **fields) -> None:
        self._log("warning", message, fields)

    def debug(self, message: str, **fields) -> None:
        self._log("debug", message, fields)
