"""Translation of inotify records into what the source must do, with a fake kernel."""

from __future__ import annotations

import errno
from pathlib import Path

from agent.sources.fim.inotify import (
    IN_CREATE,
    IN_IGNORED,
    IN_ISDIR,
    IN_MODIFY,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    Inotify,
    InotifyEvent,
)
from agent.sources.fim.roots import Scope
from agent.sources.fim.watches import WatchTable, plan_watches


class FakeInotify(Inotify):
    def __init__(self, limit: int = 100) -> None:
        self.fd = -1
        self.watches: dict[str, int] = {}
        self.removed: list[int] = []
        self.limit = limit

    def add_watch(self, path: str, mask: int = 0) -> int:
        if path not in self.watches:
            if len(self.watches) >= self.limit:
                raise OSError(errno.ENOSPC, "No space left on device", path)
            self.watches[path] = len(self.watches) + 1
        return self.watches[path]

    def rm_watch(self, wd: int) -> None:
        self.removed.append(wd)


def test_plan_for_file_root_and_missing_root(tmp_path: Path) -> None:
    scope = Scope([], [])
    file_root = str(tmp_path / "passwd")
    assert plan_watches(file_root, file_root, scope) == [(str(tmp_path), False, "passwd")]
    deep = str(tmp_path / "a" / "b" / "keys")
    assert plan_watches(deep, deep, scope) == [(str(tmp_path), False, "a")]
    (tmp_path / "d" / "e").mkdir(parents=True)
    planned = plan_watches(str(tmp_path / "d"), str(tmp_path / "d"), scope)
    assert planned == [(str(tmp_path / "d"), True, None), (str(tmp_path / "d" / "e"), True, None)]


def test_translate_files_renames_trees_and_overflow(tmp_path: Path) -> None:
    etc, tree = str(tmp_path / "etc"), str(tmp_path / "tree")
    passwd = etc + "/passwd"
    table = WatchTable(FakeInotify(), Scope([passwd, tree], []), lambda _r: None)
    table.add([(etc, False, "passwd"), (tree, True, None)])
    intents = table.translate(
        [
            InotifyEvent(1, IN_MODIFY, 0, "passwd"),
            InotifyEvent(1, IN_MODIFY, 0, "hosts"),  # not watched in /etc
            InotifyEvent(2, IN_MOVED_FROM, 9, "tmp"),
            InotifyEvent(2, IN_MOVED_TO, 9, "final"),
            InotifyEvent(2, IN_CREATE | IN_ISDIR, 0, "sub"),
            InotifyEvent(-1, IN_Q_OVERFLOW, 0, ""),
            InotifyEvent(77, IN_MODIFY, 0, "stale"),
        ]
    )
    assert intents.files == [passwd, tree + "/tmp", tree + "/final"]
    assert intents.renames == [(tree + "/tmp", tree + "/final")]
    assert intents.trees == [tree + "/sub"]
    assert intents.overflow


def test_ignored_and_moved_away_directories_are_dropped(tmp_path: Path) -> None:
    tree = str(tmp_path / "tree")
    fake = FakeInotify()
    table = WatchTable(fake, Scope([tree], []), lambda _r: None)
    table.add([(tree, True, None), (tree + "/sub", True, None), (tree + "/sub/x", True, None)])
    intents = table.translate([InotifyEvent(1, IN_MOVED_FROM | IN_ISDIR, 5, "sub")])
    assert intents.trees == [tree + "/sub"]
    assert sorted(fake.removed) == [2, 3]
    assert len(table) == 1
    intents = table.translate([InotifyEvent(1, IN_IGNORED, 0, "")])
    assert intents.trees == [tree]
    assert len(table) == 0


def test_watch_limit_is_counted_and_remembered(tmp_path: Path) -> None:
    counted: list[str] = []
    table = WatchTable(FakeInotify(limit=1), Scope([], []), counted.append)
    table.add([("/a", True, None), ("/a/b", True, None), ("/a/c", True, None)])
    assert counted == ["watch_limit"]
    assert table.limited == {"/a/b"}
    assert len(table) == 1
