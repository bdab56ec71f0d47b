"""Moving a damaged spool aside, kept for inspection, so the agent can start on a fresh one."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from agent.spool.reports import QuarantinedFile
from agent.spool.seqfile import fsync_dir

log = logging.getLogger("canhgac.agent.spool")

# The WAL and shared-memory files travel with the database: a WAL may hold its latest commits.
_COMPANIONS = ("", "-wal", "-shm")


def quarantine_spool(path: Path, *, now_ns: int, reason: str) -> QuarantinedFile:
    """Rename `path` and its -wal/-shm to `<name>.corrupt-<UTC time>[.<n>]` (same suffixes).

    Keeping the suffixes lets `sqlite3 <name>.corrupt-<time>` open the copy with its WAL.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now_ns // 1_000_000_000))
    base = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 0
    while any(base.with_name(base.name + s).exists() for s in _COMPANIONS):
        n += 1
        base = path.with_name(f"{path.name}.corrupt-{stamp}.{n}")
    moved: list[Path] = []
    for suffix in _COMPANIONS:
        src = path.with_name(path.name + suffix)
        if src.exists():
            dest = base.with_name(base.name + suffix)
            os.replace(src, dest)
            moved.append(dest)
    fsync_dir(path.parent)
    log.error(
        "spool %s is damaged (%s); moved aside, starting a fresh spool",
        path,
        reason,
        extra={"fields": {"spool": str(path), "moved_to": [str(m) for m in moved]}},
    )
    return QuarantinedFile(path=path, moved_to=tuple(moved), reason=reason)


def count_quarantined(path: Path) -> int:
    """How many quarantined copies of the spool at `path` sit beside it."""
    prefix = f"{path.name}.corrupt-"
    try:
        names = os.listdir(path.parent)
    except OSError:
        return 0
    return sum(1 for n in names if n.startswith(prefix) and not n.endswith(("-wal", "-shm")))
