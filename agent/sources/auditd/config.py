"""Configuration of the auditd source."""

from __future__ import annotations

from typing import Literal

from agent.sources.tailer import DEFAULT_MAX_LINE_BYTES
from canhgac.strictmodel import Field, StrictModel, field_validator


class AuditdConfig(StrictModel):
    """Configuration of the auditd source."""

    path: str = "/var/log/audit/audit.log"
    poll_interval_ms: int = Field(default=250, ge=10, le=10_000)
    max_line_bytes: int = Field(default=DEFAULT_MAX_LINE_BYTES, ge=256, le=16 * 1024 * 1024)
    # Where to start in a file met for the first time (no checkpoint): "beginning" ships the
    # records already in the file, "end" only those written from now on.
    read_from: Literal["beginning", "end"] = "beginning"

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"{path!r} is not an absolute path")
        return path
