"""Structured logging: human-readable text or JSON lines, chosen by configuration.

Extra fields passed with `logger.info("...", extra={"fields": {...}})` become JSON keys (or
`key=value` pairs in text). Values of keys that look like secrets are never written.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]

_SECRET_MARKERS = ("password", "secret", "token", "dsn", "key")


def _redact(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ("[redacted]" if any(m in k.lower() for m in _SECRET_MARKERS) else v)
        for k, v in fields.items()
    }


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(_redact(fields))
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger: message key=value ...` for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            time.strftime("%H:%M:%S", time.localtime(record.created))
            + f" {record.levelname.lower():7} {record.name}: {record.getMessage()}"
        )
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line += "".join(f" {k}={v}" for k, v in _redact(fields).items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(
    level: str = "info", fmt: LogFormat = "text", stream: TextIO | None = None
) -> None:
    """Configure the root logger once for a program."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # grpc and uvicorn are chatty at info level.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
