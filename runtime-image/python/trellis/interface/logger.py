"""Structured logging for functions: one JSON object per line on stdout."""

import json
import sys
import traceback
from datetime import datetime, timezone


class Logger:
    def __init__(self, context: dict | None = None) -> None:
        self._context = dict(context or {})

    @classmethod
    def get_logger(cls, **context) -> "Logger":
        return cls(context)

    def bind(self, **context) -> "Logger":
        return Logger({**self._context, **context})

    def _log(self, level: str, message: str, fields: dict) -> None:
        record = {"timestamp": datetime.now(timezone.utc).isoformat(), "level": level, "message": str(message)}
        record.update(self._context)
        exc = fields.pop("exc_info", None)
        record.update(fields)
        if exc:
            error = exc if isinstance(exc, BaseException) else sys.exc_info()[1]
            if error is not None:
                record["exception"] = {
                    "type": type(error).__name__,
                    "message": str(error),
                    "frames": [
                        {"file": f.filename, "line": f.lineno, "function": f.name}
                        for f in traceback.extract_tb(error.__traceback__)
                    ],
                }
        try:
            print(json.dumps(record, default=str), flush=True)
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
