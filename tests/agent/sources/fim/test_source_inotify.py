"""FileIntegritySource against the real kernel: inotify on files in tmp_path."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

from agent.sources.fim import FileIntegritySource
from agent.sources.fim.inotify import DIR_MASK, Inotify
from canhgac.fields import event_fields
from tests.agent.sources.harness import wait_until

from .helpers import CollectingSink, config, context, make_etc, running


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_first_run_records_silently_with_one_summary(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    (watched / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        (watched / name).write_text(name)
    sink = CollectingSink()
    source = FileIntegritySource(config(watched), etc_root=make_etc(tmp_path))
    async with running(source, sink):
        pass
    assert sink.actions() == ["baseline_created"]
    summary = sink.events[0]
    assert summary.labels["files"] == "3"
    assert (summary.category, summary.source) == ("file", "fim")
    assert source.health.state == "running"
    assert source.health.mode == "inotify"


async def test_modify_gives_one_event_with_old_and_new_hash(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    target = watched / "sshd_config"
    target.write_bytes(b"PermitRootLogin no\n")
    sink = CollectingSink()
    source = FileIntegritySource(config(watched), etc_root=make_etc(tmp_path))
    async with running(source, sink):
        with target.open("ab") as f:  # several writes in a burst: one event
            for _ in range(5):
                f.write(b"PermitRootLogin yes\n")
                f.flush()
        await wait_until(lambda: "modified" in sink.actions(target))
        # Nothing else may follow for the same burst (wait out one more settle period).
        target.with_name("marker").write_text("x")
        await wait_until(lambda: "created" in sink.actions(target.with_name("marker")))
    modified = sink.of("modified")
    assert len(modified) == 1
    ev = modified[0]
    assert ev.type == "change"
    assert ev.file.sha256_old == sha(b"PermitRootLogin no\n")
    assert ev.file.sha256_new == sha(b"PermitRootLogin no\n" + b"PermitRootLogin yes\n" * 5)
    assert ev.file.size == target.stat().st_size
    assert ev.file.owner == "root"
    fields = event_fields(ev)
    assert fields["file.path"] == str(target)
    assert fields["event.action"] == "modified"


async def test_create_delete_and_rename_in_watched_directory(tmp_path: Path) -> None:
    watched = tmp_path / "cron.d"
    watched.mkdir()
    (watched / "old").write_text("* * * * * root true\n")
    sink = CollectingSink()
    source = FileIntegritySource(config(watched), etc_root=make_etc(tmp_path))
    async with running(source, sink):
        (watched / "new").write_text("evil\n")
        await wait_until(lambda: "created" in sink.actions(watched / "new"))
        os.rename(watched / "old", watched / "renamed")
        await wait_until(lambda: "renamed" in sink.actions(watched / "renamed"))
        (watched / "new").unlink()
        await wait_until(lambda: "deleted" in sink.actions(watched / "new"))
    created = sink.of("created")[0]
    assert created.type == "creation"
    assert created.file.sha256_new == sha(b"evil\n")
    renamed = sink.of("renamed")[0]
    assert renamed.file.old_path == str(watched / "old")
    assert renamed.file.sha256_new == renamed.file.sha256_old == sha(b"* * * * * root true\n")
    deleted = sink.of("deleted")[0]
    assert deleted.type == "deletion"
    assert deleted.file.sha256_old == sha(b"evil\n")
    assert not deleted.file.sha256_new
    # A rename is one event, not a deletion of the old name plus a creation.
    assert sink.actions(watched / "old") == []


async def test_chmod_and_chown(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    target = watched / "sudoers"
    target.write_text("root ALL=(ALL) ALL\n")
    target.chmod(0o440)
    sink = CollectingSink()
    source = FileIntegritySource(config(watched), etc_root=make_etc(tmp_path))
    async with running(source, sink):
        target.chmod(0o666)
        await wait_until(lambda: "permissions_changed" in sink.actions(target))
        os.chown(target, 1000, 1000)  # the tests run as root
        await wait_until(lambda: "owner_changed" in sink.actions(target))
    perms = sink.of("permissions_changed")[0]
    assert (perms.file.mode_old & 0o7777, perms.file.mode_new & 0o7777) == (0o440, 0o666)
    assert event_fields(perms)["file.mode"] == "0666"
    owner = sink.of("owner_changed")[0]
    assert (owner.file.uid_old, owner.file.uid_new) == (0, 1000)
    assert (owner.file.gid_old, owner.file.gid_new) == (0, 1000)
    assert (owner.file.owner, owner.file.group) == ("alice", "alice")
    assert "modified" not in sink.actions(target)


async def test_atomic_replace_of_single_file_is_a_modification(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    passwd = etc / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/bash\n")
    sink = CollectingSink()
    source = FileIntegritySource(config(passwd), etc_root=make_etc(tmp_path))
    async with running(source, sink):
        (etc / "unrelated").write_text("not watched")
        tmp = etc / "passwd.tmp"
        tmp.write_text("root:x:0:0::/root:/bin/bash\nevil:x:0:0::/:/bin/sh\n")
        os.replace(tmp, passwd)
        await wait_until(lambda: "modified" in sink.actions(passwd))
    ev = sink.of("modified")[0]
    assert ev.file.sha256_old == sha(b"root:x:0:0::/root:/bin/bash\n")
    assert ev.file.sha256_new == sha(passwd.read_bytes())
    assert {e.file.path for e in sink.events if e.action != "baseline_created"} == {str(passwd)}


async def test_missing_path_that_appears_is_created(tmp_path: Path) -> None:
    preload = tmp_path / "etc" / "ld.so.preload"  # neither the file nor its parent exists
    cron_hourly = tmp_path / "cron.hourly"  # a directory root that does not exist yet
    sink = CollectingSink()
    source = FileIntegritySource(config(preload, cron_hourly), etc_root=make_etc(tmp_path))
    async with running(source, sink):
        assert sink.actions() == ["baseline_created"]
        preload.parent.mkdir()
        preload.write_text("/tmp/evil.so\n")
        await wait_until(lambda: "created" in sink.actions(preload))
        cron_hourly.mkdir()
        (cron_hourly / "job").write_text("#!/bin/sh\n")
        await wait_until(lambda: "created" in sink.actions(cron_hourly / "job"))
        (cron_hourly / "job").write_text("#!/bin/sh\nid\n")
        await wait_until(lambda: "modified" in sink.actions(cron_hourly / "job"))
    assert sink.of("created")[0].file.sha256_new == sha(b"/tmp/evil.so\n")


async def test_new_subdirectory_in_recursive_root_is_watched(tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    sink = CollectingSink()
    source = FileIntegritySource(config(web_roots=[str(root)]), etc_root=make_etc(tmp_path))
    async with running(source, sink):
        (root / "a" / "b").mkdir(parents=True)
        (root / "a" / "b" / "shell.php").write_text("<?php system($_GET['c']); ?>")
        await wait_until(lambda: "created" in sink.actions(root / "a" / "b" / "shell.php"))
        (root / "a" / "b" / "shell.php").write_text("changed")
        await wait_until(lambda: "modified" in sink.actions(root / "a" / "b" / "shell.php"))


async def test_changes_while_stopped_are_reported_at_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "keep").write_text("same")
    (watched / "change").write_text("before")
    (watched / "remove").write_text("bye")
    etc = make_etc(tmp_path)
    first = CollectingSink()
    async with running(FileIntegritySource(config(watched), etc_root=etc), first, context(state)):
        pass
    assert first.actions() == ["baseline_created"]

    (watched / "change").write_text("after")
    (watched / "remove").unlink()
    (watched / "added").write_text("new")
    second = CollectingSink()
    async with running(FileIntegritySource(config(watched), etc_root=etc), second, context(state)):
        pass
    by_path = {e.file.path: e for e in second.events}
    assert sorted(second.actions()) == ["created", "deleted", "modified"]
    assert by_path[str(watched / "change")].file.sha256_old == sha(b"before")
    assert by_path[str(watched / "change")].file.sha256_new == sha(b"after")
    assert by_path[str(watched / "remove")].action == "deleted"
    assert by_path[str(watched / "added")].action == "created"

    third = CollectingSink()
    async with running(FileIntegritySource(config(watched), etc_root=etc), third, context(state)):
        pass
    assert third.events == []  # the baseline moved forward: nothing is reported twice


class LimitedInotify(Inotify):
    """A real inotify instance whose kernel limit is reached after `allowed` watches."""

    allowed = 1

    def add_watch(self, path: str, mask: int = DIR_MASK) -> int:
        if self.allowed <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        self.allowed -= 1
        return super().add_watch(path, mask)


async def test_watch_limit_falls_back_to_rescan(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    sink = CollectingSink()
    source = FileIntegritySource(
        config(first, second), etc_root=make_etc(tmp_path), inotify_factory=LimitedInotify
    )
    async with running(source, sink):
        assert source.health.unparsed["watch_limit"] >= 1
        assert "max_user_watches" in source.health.detail
        assert str(second) in source.health.detail
        (second / "unwatched").write_text("x")
        (first / "watched").write_text("x")
        await wait_until(lambda: "created" in sink.actions(first / "watched"))
        assert sink.actions(second / "unwatched") == []
        source.request_rescan()  # what the periodic rescan does
        await wait_until(lambda: "created" in sink.actions(second / "unwatched"))


async def test_without_inotify_rescans_find_changes(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "f").write_text("1")
    sink = CollectingSink()
    source = FileIntegritySource(config(watched), etc_root=make_etc(tmp_path), inotify_factory=None)
    async with running(source, sink):
        assert source.health.mode == "rescan"
        (watched / "f").write_text("22")
        source.request_rescan()
        await wait_until(lambda: "modified" in sink.actions(watched / "f"))


async def test_home_authorized_keys_are_watched(tmp_path: Path) -> None:
    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    etc = tmp_path / "etcroot"
    etc.mkdir()
    (etc / "passwd").write_text(
        f"alice:x:1000:1000::{home}:/bin/bash\nsvc:x:999:999::{tmp_path}:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text("alice:x:1000:\n")
    sink = CollectingSink()
    source = FileIntegritySource(config(home_authorized_keys=True), etc_root=etc)
    keys = home / ".ssh" / "authorized_keys"
    async with running(source, sink):
        keys.parent.mkdir()
        keys.write_text("ssh-ed25519 AAAA attacker\n")
        await wait_until(lambda: "created" in sink.actions(keys))
    assert sink.of("created")[0].file.sha256_new == sha(b"ssh-ed25519 AAAA attacker\n")
