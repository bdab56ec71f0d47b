"""Configuration of the Zeek log source."""

from __future__ import annotations

import re
from typing import Literal

from agent.sources.tailer import DEFAULT_MAX_LINE_BYTES
from canhgac.strictmodel import Field, StrictModel, field_validator

# Where Zeek's current logs live: zeekctl's default prefix, a source build's, Security Onion's.
DEFAULT_DIRECTORIES: tuple[str, ...] = (
    "/opt/zeek/logs/current",
    "/usr/local/zeek/logs/current",
    "/nsm/zeek/logs/current",
)

# The logs the collector's Sigma mapping answers (collector/detection/logsources/zeek.py).
# conn.log (every connection: by far the largest log) and dns.log (public `zeek/dns` rules run
# on the network sensor's DNS events, not on these records) are not read unless listed.
DEFAULT_LOGS: tuple[str, ...] = (
    "http",
    "smb_files",
    "smb_mapping",
    "dce_rpc",
    "kerberos",
    "rdp",
    "x509",
    "ssl",
)

_LOG_NAME = re.compile(r"[a-z0-9_]{1,64}")


class ZeekConfig(StrictModel):
    """Which Zeek logs the agent reads, and where.

    The first of `directories` that exists is used (checked again every 10 s while none does);
    in it, `<log>.log` is followed for every name in `logs`.
    """

    directories: list[str] = Field(default_factory=lambda: list(DEFAULT_DIRECTORIES))
    logs: list[str] = Field(default_factory=lambda: list(DEFAULT_LOGS))
    poll_interval_ms: int = Field(default=1000, ge=10, le=60_000)
    max_line_bytes: int = Field(default=DEFAULT_MAX_LINE_BYTES, ge=256, le=16 * 1024 * 1024)
    # Where to start in a file met for the first time (no checkpoint).
    read_from: Literal["beginning", "end"] = "beginning"

    @field_validator("directories")
    @classmethod
    def _absolute_unique(cls, paths: list[str]) -> list[str]:
        if not paths:
            raise ValueError("at least one directory is needed")
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} is not an absolute path")
        if len(set(paths)) != len(paths):
            raise ValueError("a directory is listed twice")
        return paths

    @field_validator("logs")
    @classmethod
    def _log_names(cls, logs: list[str]) -> list[str]:
        if not logs:
            raise ValueError("at least one log is needed")
        for name in logs:
            if not _LOG_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a Zeek log name (http, smb_files ...)")
        if len(set(logs)) != len(logs):
            raise ValueError("a log is listed twice")
        return logs
