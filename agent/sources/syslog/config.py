"""Configuration of the service-syslog source."""

from __future__ import annotations

from typing import Literal

from agent.sources.tailer import DEFAULT_MAX_LINE_BYTES
from canhgac.strictmodel import Field, StrictModel, field_validator, model_validator

# The programs whose syslog lines become events by default: those the Sigma log sources
# `product: linux, service: cron | vsftpd | clamav | guacamole | syslog` need (the syslog ones
# ask for named's and systemd's messages), and nothing else. Compared without case.
DEFAULT_PROGRAMS: tuple[str, ...] = (
    # cron: Debian's CRON and crontab, RHEL's crond/CROND, anacron
    "cron",
    "crond",
    "crontab",
    "anacron",
    # FTP server
    "vsftpd",
    # ClamAV: the daemon, signature updates, on-access scanning, the mail filter
    "clamd",
    "freshclam",
    "clamonacc",
    "clamav-milter",
    # Apache Guacamole's proxy daemon (remote desktop gateway)
    "guacd",
    # BIND (`named`): zone transfers refused, fatal errors
    "named",
    # systemd (PID 1 and user managers): services started and stopped
    "systemd",
)
ALL_PROGRAMS = "*"
# Where a file's own format names no program, the program its records are given.
OWN_FORMAT_PROGRAMS: dict[str, str] = {"vsftpd": "vsftpd", "clamav": "clamd"}


class SyslogFile(StrictModel):
    """One more file to tail: a syslog file (`/var/log/cron`) or a service's own log."""

    path: str = Field(min_length=1)
    # "syslog": RFC 3164 / RFC 5424 lines (the allow-list applies). "vsftpd": vsftpd.log
    # (`[pid N] [user] FAIL LOGIN: Client "ip"` lines, or xferlog transfer lines). "clamav":
    # clamd.log / freshclam.log (`TIME -> message`).
    format: Literal["syslog", "vsftpd", "clamav"] = "syslog"
    # Own-format files: the program their records name (default: vsftpd, clamd).
    program: str = ""


class SyslogConfig(StrictModel):
    """Which syslog files to tail and which programs' lines to keep.

    `paths` are the host's general syslog files (whichever exist are read; a missing one is
    opened when it appears). `programs` is the allow-list of syslog tags kept (case ignored;
    `"*"` keeps every program): lines of other programs are skipped and counted as
    "program_not_selected" before any further parsing. Lines of the programs the `authlog`
    source parses (sshd, sudo, su, useradd ...) are left to it ("read_by_authlog") unless
    `skip_authlog_programs` is false.
    """

    paths: list[str] = Field(default_factory=lambda: ["/var/log/syslog", "/var/log/messages"])
    files: list[SyslogFile] = Field(default_factory=list)
    programs: list[str] = Field(default_factory=lambda: list(DEFAULT_PROGRAMS), min_length=1)
    skip_authlog_programs: bool = True
    poll_interval_ms: int = Field(default=500, ge=10, le=10_000)
    max_line_bytes: int = Field(default=DEFAULT_MAX_LINE_BYTES, ge=256, le=16 * 1024 * 1024)
    # Without a checkpoint: "end" (default) reads what is written from now on (a general
    # syslog file may hold hundreds of MB of history), "beginning" the whole file.
    read_from: Literal["beginning", "end"] = "end"

    @field_validator("programs")
    @classmethod
    def _names(cls, programs: list[str]) -> list[str]:
        for name in programs:
            if not name or any(c.isspace() or c in "[]:" for c in name):
                raise ValueError(f"{name!r} is not a syslog program name")
        return programs

    @model_validator(mode="after")
    def _unique_files(self) -> SyslogConfig:
        every = [*self.paths, *(f.path for f in self.files)]
        for path in every:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} is not an absolute path")
        if len(set(every)) != len(every):
            raise ValueError("a path is listed twice")
        if not every:
            raise ValueError("no file to read: give paths or files")
        return self

    def all_files(self) -> list[SyslogFile]:
        """Every file to tail, the general syslog paths first."""
        return [SyslogFile(path=p) for p in self.paths] + list(self.files)
