"""Configuration of the process source."""

from __future__ import annotations

from typing import Literal

from canhgac.strictmodel import Field, StrictModel, field_validator


class ProcessConfig(StrictModel):
    """How the process source watches process starts and exits.

    `mode`: "netlink" uses the kernel's process-events connector (every exec and exit, needs
    root / CAP_NET_ADMIN in the initial network namespace), "poll" diffs /proc every
    `poll_interval_ms` (misses processes shorter than the interval, exit codes unknown), "auto"
    tries netlink and falls back to polling, saying why in the source's health.
    """

    mode: Literal["auto", "netlink", "poll"] = "auto"
    poll_interval_ms: int = Field(default=1000, ge=100, le=60_000)
    # Bound of the pid -> description cache that lets exit events name the program.
    max_tracked: int = Field(default=32_768, ge=64, le=4_194_304)
    # Programs (absolute paths) whose exec and exit are not reported, e.g. a monitoring script
    # that runs every few seconds. A script is matched by its path too (the kernel runs
    # `#!/bin/sh` scripts as `/bin/sh <script path> ...`).
    ignore_executables: list[str] = Field(default_factory=list)

    @field_validator("ignore_executables")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} is not an absolute path")
        return paths
