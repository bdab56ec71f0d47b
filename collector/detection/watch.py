"""Reload the rules when a rule file changes: the files' names, sizes and mtimes are compared
every few seconds (no inotify: rule directories are small, and this also works on network
file systems)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from collector.detection.ruleset import find_rule_files

log = logging.getLogger("canhgac.collector.detection")

Signature = frozenset[tuple[str, int, int]]


def signature(paths: Sequence[Path]) -> Signature:
    files, _ = find_rule_files(paths)
    out = set()
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        out.add((str(f), st.st_size, st.st_mtime_ns))
    return frozenset(out)


class RuleFileWatcher:
    """Calls `on_change()` once per change of the rule files under `paths`."""

    def __init__(self, paths: Sequence[Path], on_change: Callable[[], None]) -> None:
        self._paths = list(paths)
        self._on_change = on_change

    async def run(self, interval_s: float) -> None:
        last = await asyncio.to_thread(signature, self._paths)
        while True:
            await asyncio.sleep(interval_s)
            current = await asyncio.to_thread(signature, self._paths)
            if current != last:
                log.info("rule files changed; reloading")
                last = current
                self._on_change()
