"""What changed between two states of a path, and the events that say so."""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass

from canhgac.ids import new_id
from canhgac.v1 import events_pb2

from .baseline import FileRecord

SOURCE_ID = "fim"
CATEGORY = "file"
_TYPES = {"created": "creation", "deleted": "deletion"}  # every other action is a "change"


@dataclass(frozen=True)
class Change:
    """One reportable change. `old` is None for a creation, `new` None for a deletion."""

    action: str  # created modified deleted renamed permissions_changed owner_changed
    path: str
    old: FileRecord | None
    new: FileRecord | None
    old_path: str = ""

    @property
    def type(self) -> str:
        return _TYPES.get(self.action, "change")


def content_changed(old: FileRecord, new: FileRecord) -> bool:
    if stat.S_IFMT(old.mode) != stat.S_IFMT(new.mode):
        return True
    if old.sha256 and new.sha256:
        return old.sha256 != new.sha256
    # Not hashed (too large, unreadable): judge by what stat shows.
    return (old.sha256, old.size, old.mtime_ns, old.inode) != (
        new.sha256,
        new.size,
        new.mtime_ns,
        new.inode,
    )


def diff(path: str, old: FileRecord | None, new: FileRecord | None) -> list[Change]:
    """The changes from `old` to `new`: a content change is one "modified" event that also
    carries any mode and owner change; otherwise a mode change and an owner change are one
    event each. A new inode with the same content and metadata (a rewrite with identical
    bytes) and an mtime-only change (touch) are not reported."""
    if old is None and new is None:
        return []
    if old is None:
        return [Change("created", path, None, new)]
    if new is None:
        return [Change("deleted", path, old, None)]
    if content_changed(old, new):
        return [Change("modified", path, old, new)]
    out: list[Change] = []
    if stat.S_IMODE(old.mode) != stat.S_IMODE(new.mode):
        out.append(Change("permissions_changed", path, old, new))
    if (old.uid, old.gid) != (new.uid, new.gid):
        out.append(Change("owner_changed", path, old, new))
    return out


def build_event(
    change: Change,
    *,
    time_ns: int,
    created_ns: int,
    agent_id: str,
    host: str,
    user_name: Callable[[int], str],
    group_name: Callable[[int], str],
) -> events_pb2.Event:
    """The Event for one change. `mode_*` hold the whole st_mode (file type bits included)."""
    payload = events_pb2.FileEvent(path=change.path, old_path=change.old_path)
    old, new = change.old, change.new
    if old is not None:
        payload.sha256_old = old.sha256
        payload.mode_old = old.mode
        payload.uid_old = old.uid
        payload.gid_old = old.gid
    if new is not None:
        payload.sha256_new = new.sha256
        payload.mode_new = new.mode
        payload.uid_new = new.uid
        payload.gid_new = new.gid
        payload.owner = user_name(new.uid)
        payload.group = group_name(new.gid)
    current = new or old
    if current is not None:
        payload.size = current.size
        payload.mtime_ns = current.mtime_ns
    return events_pb2.Event(
        id=new_id(time_ns),
        time_ns=time_ns,
        created_ns=created_ns,
        agent_id=agent_id,
        host=host,
        category=CATEGORY,
        type=change.type,
        action=change.action,
        outcome=events_pb2.OUTCOME_SUCCESS,
        source=SOURCE_ID,
        file=payload,
    )


def baseline_event(
    files: int, roots: int, *, time_ns: int, created_ns: int, agent_id: str, host: str
) -> events_pb2.Event:
    """The one summary event of a silent baseline (first run, or roots new to the baseline)."""
    return events_pb2.Event(
        id=new_id(time_ns),
        time_ns=time_ns,
        created_ns=created_ns,
        agent_id=agent_id,
        host=host,
        category=CATEGORY,
        type="info",
        action="baseline_created",
        outcome=events_pb2.OUTCOME_SUCCESS,
        source=SOURCE_ID,
        labels={"files": str(files), "roots": str(roots)},
        file=events_pb2.FileEvent(),
    )
