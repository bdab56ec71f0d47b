"""Configuration of the journald auth source."""

from __future__ import annotations

import re
from typing import Literal

from agent.sources.authlog.parser import PROGRAM_PARSERS
from canhgac.strictmodel import Field, StrictModel, field_validator, model_validator

# auth (4) and authpriv (10): where PAM, login, sshd and sudo log on a syslog-style host.
AUTH_FACILITIES = (4, 10)
MiB = 1024 * 1024
# A journal field value we put on journalctl's command line as `FIELD=value`.
_IDENTIFIER = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


class JournaldConfig(StrictModel):
    """How to run journalctl and which journal entries to read.

    `directory` or `files` read a given journal (a copied one, or test fixtures) instead of
    the host's system journal. `read_from` says where to start when no checkpoint is saved:
    "end" (the default) only ships entries written from now on, "beginning" ships the whole
    auth history the journal still holds, which may be months of sshd noise.
    """

    journalctl: str = Field(default="journalctl", min_length=1)
    directory: str | None = None
    files: list[str] | None = Field(default=None, min_length=1)
    read_from: Literal["beginning", "end"] = "end"
    # Entries are selected when their SYSLOG_FACILITY is listed OR their SYSLOG_IDENTIFIER or
    # _COMM is listed; an entry from a program without a parser is counted as `not_auth`.
    facilities: list[int] = Field(default_factory=lambda: list(AUTH_FACILITIES))
    identifiers: list[str] = Field(default_factory=lambda: list(PROGRAM_PARSERS))
    max_line_bytes: int = Field(default=1 * MiB, ge=4096, le=16 * MiB)
    batch_delay_ms: int = Field(default=250, ge=10, le=10_000)
    restart_backoff_ms: int = Field(default=1_000, ge=10, le=60_000)
    restart_backoff_max_ms: int = Field(default=60_000, ge=10, le=3_600_000)

    @field_validator("directory")
    @classmethod
    def _absolute_directory(cls, directory: str | None) -> str | None:
        # journalctl cannot follow a relative path (its inotify set-up needs a parent dir).
        if directory is not None and not directory.startswith("/"):
            raise ValueError(f"{directory!r} is not an absolute path")
        return directory

    @field_validator("files")
    @classmethod
    def _absolute_files(cls, files: list[str] | None) -> list[str] | None:
        for path in files or []:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} is not an absolute path")
        if files is not None and len(set(files)) != len(files):
            raise ValueError("a file is listed twice")
        return files

    @field_validator("facilities")
    @classmethod
    def _facility_range(cls, facilities: list[int]) -> list[int]:
        for facility in facilities:
            if not 0 <= facility <= 23:
                raise ValueError(f"syslog facility {facility} is not in 0..23")
        return sorted(set(facilities))

    @field_validator("identifiers")
    @classmethod
    def _plain_identifiers(cls, identifiers: list[str]) -> list[str]:
        for name in identifiers:
            if not _IDENTIFIER.fullmatch(name):
                raise ValueError(f"{name!r} is not a program name (letters, digits, _.@-)")
        if len(set(identifiers)) != len(identifiers):
            raise ValueError("an identifier is listed twice")
        return identifiers

    @model_validator(mode="after")
    def _consistent(self) -> JournaldConfig:
        if self.directory is not None and self.files is not None:
            raise ValueError("set either directory or files, not both")
        if not self.facilities and not self.identifiers:
            raise ValueError("facilities and identifiers are both empty: nothing would be read")
        if self.restart_backoff_max_ms < self.restart_backoff_ms:
            raise ValueError("restart_backoff_max_ms is below restart_backoff_ms")
        return self
