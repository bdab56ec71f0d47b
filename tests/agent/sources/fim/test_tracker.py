"""Change detection (diff), event building and the baseline tracker on a fixture tree."""

from __future__ import annotations

import os
from pathlib import Path

from agent.sources.fim.baseline import BaselineStore, FileRecord
from agent.sources.fim.changes import build_event, diff
from agent.sources.fim.roots import Scope
from agent.sources.fim.scanner import ByteBudget, FileProber
from agent.sources.fim.tracker import BaselineTracker
from canhgac.fields import event_fields


def rec(
    sha: str = "aa",
    mode: int = 0o100644,
    uid: int = 0,
    size: int = 1,
    mtime_ns: int = 1,
    inode: int = 1,
) -> FileRecord:
    return FileRecord("/f", sha, size, mode, uid, 0, mtime_ns, 1, inode)


def actions(old: FileRecord | None, new: FileRecord | None) -> list[str]:
    return [c.action for c in diff("/f", old, new)]


def test_diff_actions() -> None:
    assert actions(None, None) == []
    assert actions(None, rec()) == ["created"]
    assert actions(rec(), None) == ["deleted"]
    assert actions(rec(), rec()) == []
    assert actions(rec(), rec(sha="bb", mode=0o100600)) == ["modified"]  # one event for both
    assert actions(rec(), rec(mode=0o100600)) == ["permissions_changed"]
    assert actions(rec(), rec(uid=5)) == ["owner_changed"]
    assert actions(rec(), rec(mode=0o100600, uid=5)) == ["permissions_changed", "owner_changed"]
    assert actions(rec(), rec(inode=9, mtime_ns=7)) == []  # same bytes rewritten, touch
    assert actions(rec(), rec(mode=0o120777)) == ["modified"]  # became a symlink
    assert actions(rec(sha=""), rec(sha="", size=2)) == ["modified"]  # unhashed: by stat


def test_build_event_maps_to_field_vocabulary() -> None:
    (change,) = diff("/f", rec(mode=0o100640), rec(sha="bb", mode=0o100666, uid=1000))
    ev = build_event(
        change,
        time_ns=5,
        created_ns=6,
        agent_id="a",
        host="h",
        user_name=lambda uid: {1000: "alice"}.get(uid, ""),
        group_name=lambda gid: "root",
    )
    fields = event_fields(ev)
    assert fields["event.category"] == "file"
    assert fields["event.type"] == "change"
    assert fields["event.module"] == "fim"
    assert fields["file.hash.sha256"] == "bb"
    assert fields["file.original.hash.sha256"] == "aa"
    assert (fields["file.mode"], fields["file.original.mode"]) == ("0666", "0640")
    assert (fields["file.uid"], fields["file.original.uid"]) == (1000, 0)
    assert (fields["file.owner"], fields["file.group"]) == ("alice", "root")


def make_tracker(root: Path, max_files: int = 100) -> tuple[BaselineTracker, list[str]]:
    counted: list[str] = []
    tracker = BaselineTracker(
        BaselineStore(None),
        FileProber(ByteBudget(1 << 30), 1 << 20),
        Scope([str(root)], ["*.swp"]),
        max_files,
        counted.append,
    )
    return tracker, counted


def full_scan(tracker: BaselineTracker, root: Path, silent: bool = False) -> list[str]:
    gen = tracker.new_generation()
    paths = sorted(str(p) for p in root.rglob("*") if p.is_file())
    changes = tracker.scan(paths, gen, silent) + tracker.sweep(gen)
    tracker.store.commit()
    return sorted(f"{c.action} {os.path.basename(c.path)}" for c in changes)


def test_scan_silent_then_changes_then_sweep(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1")
    (tmp_path / "b").write_text("2")
    tracker, _ = make_tracker(tmp_path)
    assert full_scan(tracker, tmp_path, silent=True) == []
    assert tracker.recorded_silently == 2
    (tmp_path / "a").write_text("changed")
    (tmp_path / "b").unlink()
    (tmp_path / "c").write_text("3")
    assert full_scan(tracker, tmp_path) == ["created c", "deleted b", "modified a"]
    assert full_scan(tracker, tmp_path) == []


def test_file_limit_is_counted(tmp_path: Path) -> None:
    for name in "abc":
        (tmp_path / name).write_text(name)
    tracker, counted = make_tracker(tmp_path, max_files=2)
    full_scan(tracker, tmp_path, silent=True)
    assert tracker.store.count() == 2
    assert counted == ["file_limit"]


def test_check_rename_and_atomic_replace(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("A")
    (tmp_path / "target").write_text("old")
    tracker, _ = make_tracker(tmp_path)
    full_scan(tracker, tmp_path, silent=True)
    os.rename(tmp_path / "a", tmp_path / "b")
    (renamed,) = tracker.check(str(tmp_path / "b"), renamed_from=str(tmp_path / "a"))
    assert (renamed.action, renamed.old_path) == ("renamed", str(tmp_path / "a"))
    assert tracker.store.get(str(tmp_path / "a")) is None
    (tmp_path / "b").write_text("new")
    os.replace(tmp_path / "b", tmp_path / "target")
    (replaced,) = tracker.check(str(tmp_path / "target"), renamed_from=str(tmp_path / "b"))
    assert replaced.action == "modified"
    assert replaced.old is not None
    assert replaced.new is not None
    assert (replaced.old.size, replaced.new.size) == (3, 3)
    assert replaced.old.sha256 != replaced.new.sha256
    assert tracker.store.get(str(tmp_path / "b")) is None


def test_excluded_and_out_of_scope_paths_are_not_tracked(tmp_path: Path) -> None:
    (tmp_path / "x.swp").write_text("")
    tracker, _ = make_tracker(tmp_path)
    assert tracker.check(str(tmp_path / "x.swp")) == []
    assert tracker.check("/elsewhere") == []
    assert tracker.store.count() == 0
