"""Matching processes against `ignore_executables`."""

from __future__ import annotations

import os
from collections.abc import Iterable

from .procfs import ProcessInfo


class IgnoredExecutables:
    """Says whether a process runs one of the configured programs.

    A configured path matches the executable by its own spelling and by its resolved target
    (`/bin/sh` configured, `/usr/bin/dash` executed). A script matches by its path in argv[1],
    where the kernel puts it when it runs a `#!` interpreter, while the executable is the
    interpreter itself.
    """

    def __init__(self, paths: Iterable[str]) -> None:
        self._paths: frozenset[str] = frozenset(
            p for path in paths for p in (path, os.path.realpath(path))
        )

    def __bool__(self) -> bool:
        return bool(self._paths)

    def matches(self, info: ProcessInfo) -> bool:
        if not self._paths:
            return False
        if info.executable in self._paths:
            return True
        return len(info.args) >= 2 and info.args[1] in self._paths
