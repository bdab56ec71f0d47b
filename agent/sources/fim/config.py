"""Configuration of the file-integrity source."""

from __future__ import annotations

from canhgac.strictmodel import Field, StrictModel, field_validator

MIB = 1024 * 1024

DEFAULT_PATHS: tuple[str, ...] = (
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh/sshd_config",
    "/etc/ssh/sshd_config.d",
    "/etc/crontab",
    "/etc/cron.d",
    "/etc/cron.daily",
    "/etc/cron.hourly",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/var/spool/cron",
    "/etc/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/etc/ld.so.preload",
    "/etc/ld.so.conf.d",
    "/root/.ssh/authorized_keys",
)


def _absolute_unique(paths: list[str]) -> list[str]:
    for path in paths:
        if not path.startswith("/"):
            raise ValueError(f"{path!r} is not an absolute path")
    if len(set(paths)) != len(paths):
        raise ValueError("a path is listed twice")
    return paths


class FimConfig(StrictModel):
    """What the file-integrity source watches and how much work it may do.

    A path that is a directory is watched recursively; any other path (a file, or a path that
    does not exist yet) is watched through its parent directory, so creation, deletion and an
    atomic replace are seen. Missing paths are never an error.
    """

    paths: list[str] = Field(default_factory=lambda: list(DEFAULT_PATHS))
    # Adds <home>/.ssh/authorized_keys for every login user in <etc_root>/passwd whose home
    # is an existing directory.
    home_authorized_keys: bool = True
    # Directories watched recursively in addition to `paths` (e.g. /var/www).
    web_roots: list[str] = Field(default_factory=list)
    # fnmatch globs on the full path; a matching directory is not descended into.
    exclude: list[str] = Field(default_factory=list)
    # Larger files are tracked by metadata only (counted "too_large_to_hash").
    max_file_bytes: int = Field(default=64 * MIB, ge=0)
    # Files beyond this many are not tracked (counted "file_limit").
    max_files: int = Field(default=200_000, ge=1, le=10_000_000)
    rescan_interval_s: int = Field(default=3600, ge=60)
    # Read budget of hashing, so a large tree is walked without exceeding the CPU budget.
    hash_bytes_per_second: int = Field(default=32 * MIB, ge=64 * 1024)
    # Bursts of modifications to one path within this quiet time make one event.
    settle_ms: int = Field(default=200, ge=0, le=60_000)

    @field_validator("paths", "web_roots")
    @classmethod
    def _check_paths(cls, paths: list[str]) -> list[str]:
        return _absolute_unique(paths)
