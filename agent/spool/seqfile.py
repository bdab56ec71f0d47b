"""The seq sidecar: an upper bound on every seq the spool has assigned, kept outside the database.

It exists so a quarantined or deleted database cannot make the agent reuse a seq (the collector
would discard the new batch as a duplicate). The spool reserves seqs in blocks: it raises the
bound before committing a seq above it, so the file is rewritten once per block, not per batch,
and on a clean close it lowers the bound to the exact last seq.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("canhgac.agent.spool")


def read_seq_bound(path: Path) -> int:
    """The bound stored in `path`, or 0 if the file is missing or unreadable (logged)."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read spool seq file %s: %s", path, exc)
        return 0
    try:
        value = int(text.strip())
    except ValueError:
        log.warning("spool seq file %s holds %r, not a number; ignoring it", path, text[:40])
        return 0
    return max(value, 0)


def write_seq_bound(path: Path, value: int) -> None:
    """Replace the bound atomically: a crash leaves either the old or the new value on disk."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{value}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
