"""A fake /proc tree for tests: what the process source reads, nothing more."""

from __future__ import annotations

import shutil
from pathlib import Path

BTIME = 1_700_000_000
CLK_TCK = 100


class ProcTree:
    """Writes /proc/<pid>/{stat,cmdline,status,exe,cwd} and /proc/stat under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "stat").write_text(f"cpu  1 2 3 4\nbtime {BTIME}\nprocesses 99\n")
        (root / "self").mkdir(exist_ok=True)  # not a pid: must be skipped

    def add(
        self,
        pid: int,
        *,
        comm: str = "prog",
        ppid: int = 1,
        start: int = 500,
        args: tuple[str, ...] = ("/usr/bin/prog",),
        exe: str | None = "/usr/bin/prog",
        cwd: str | None = "/",
        uid: int | None = 0,
    ) -> Path:
        d = self.root / str(pid)
        d.mkdir()
        # Fields 3.. of stat (state first); starttime is field 22.
        after = ["S", str(ppid)] + ["0"] * 50
        after[22 - 3] = str(start)
        (d / "stat").write_text(f"{pid} ({comm}) {' '.join(after)}\n")
        (d / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in args))
        if uid is not None:
            (d / "status").write_text(f"Name:\t{comm}\nUid:\t{uid + 1}\t{uid}\t{uid}\t{uid}\n")
        if exe is not None:
            (d / "exe").symlink_to(exe)
        if cwd is not None:
            (d / "cwd").symlink_to(cwd)
        return d

    def remove(self, pid: int) -> None:
        shutil.rmtree(self.root / str(pid))
