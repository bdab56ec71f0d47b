"""The SQLite baseline store."""

from __future__ import annotations

from pathlib import Path

from agent.sources.fim.baseline import BASELINE_FILE, BaselineStore, FileRecord


def rec(path: str, sha: str = "aa", mode: int = 0o100644) -> FileRecord:
    return FileRecord(path, sha, 10, mode, 0, 0, 1, 2, 3)


def test_put_get_delete_in_memory() -> None:
    store = BaselineStore(None)
    assert store.get("/a") is None
    store.put(rec("/a"))
    store.commit()
    assert store.get("/a") == rec("/a")
    store.put(rec("/a", sha="bb"))
    assert store.get("/a") == rec("/a", sha="bb")
    assert store.count() == 1
    store.delete("/a")
    assert store.get("/a") is None
    store.close()


def test_persists_only_committed_changes(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    store.put(rec("/kept"))
    store.add_root("/")
    store.set_meta("k", "v")
    store.commit()
    store.put(rec("/uncommitted"))
    store.close()  # rolls back what was not committed
    assert (tmp_path / BASELINE_FILE).exists()
    again = BaselineStore(tmp_path)
    assert again.get("/kept") == rec("/kept")
    assert again.get("/uncommitted") is None
    assert again.roots() == {"/"}
    assert again.get_meta("k") == "v"
    again.close()


def test_unseen_by_generation_and_prefix() -> None:
    store = BaselineStore(None)
    first = store.next_generation()
    second = store.next_generation()
    assert second > first
    store.put(rec("/etc/a"), seen=first)
    store.put(rec("/etc/sub/b"), seen=first)
    store.put(rec("/etc0"), seen=first)  # sorts just after "/etc/": not under /etc
    store.put(rec("/etcetera"), seen=first)
    store.put(rec("/etc/c"), seen=second)
    assert sorted(store.unseen(second)) == ["/etc/a", "/etc/sub/b", "/etc0", "/etcetera"]
    assert sorted(store.unseen(second, under="/etc")) == ["/etc/a", "/etc/sub/b"]
    store.mark_seen("/etc/a", second)
    assert store.unseen(second, under="/etc") == ["/etc/sub/b"]
    assert store.unseen(second, under="/etc0") == ["/etc0"]


def test_generation_persists(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    gen = store.next_generation()
    store.commit()
    store.close()
    again = BaselineStore(tmp_path)
    assert again.next_generation() == gen + 1
    again.close()


def test_same_stat() -> None:
    assert rec("/a").same_stat(rec("/a", sha="other"))
    assert not rec("/a").same_stat(rec("/a", mode=0o100600))
