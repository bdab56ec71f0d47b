"""Which process owns a socket: socket inode -> pid -> executable, name; uid -> user name.

The kernel's socket tables give an inode but no pid. The only way back is to read every
`/proc/<pid>/fd/*` link and look for `socket:[<inode>]`, which costs one readlink per open file
descriptor on the host. So the walk is lazy: it runs only when asked about inodes it has not
looked for before, stops as soon as all of them are found, and its answers are cached until
the socket disappears (`retain`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    executable: str
    name: str


class SocketOwners:
    """Maps socket inodes to their owning process, walking /proc/<pid>/fd only when needed.

    Contract: `owner(inode)` after `resolve([... inode ...])` returns the ProcessInfo of a
    process holding that socket open, or None when none was found (an exited process, a
    socket held only by the kernel, a process we may not inspect). An inode is looked for in
    at most one walk; `retain(live)` forgets inodes that are gone so the cache stays bounded
    by the number of live sockets. `walks` counts fd walks (for tests and health).
    """

    def __init__(self, proc_root: Path) -> None:
        self._proc = proc_root
        self._owner: dict[int, ProcessInfo | None] = {}
        self.walks = 0

    def resolve(self, inodes: Iterable[int]) -> None:
        wanted = {i for i in inodes if i and i not in self._owner}
        if not wanted:
            return
        self.walks += 1
        found = self._walk(wanted)
        info_by_pid: dict[int, ProcessInfo] = {}
        for inode in wanted:
            pid = found.get(inode)
            if pid is None:
                self._owner[inode] = None
                continue
            if pid not in info_by_pid:
                info_by_pid[pid] = self._process_info(pid)
            self._owner[inode] = info_by_pid[pid]

    def owner(self, inode: int) -> ProcessInfo | None:
        return self._owner.get(inode)

    def retain(self, live: set[int]) -> None:
        for inode in [i for i in self._owner if i not in live]:
            del self._owner[inode]

    def __len__(self) -> int:
        return len(self._owner)

    def _walk(self, wanted: set[int]) -> dict[int, int]:
        targets = {f"socket:[{i}]": i for i in wanted}
        found: dict[int, int] = {}
        try:
            entries = os.scandir(self._proc)
        except OSError:
            return found
        with entries:
            for entry in entries:
                if not entry.name.isdigit():
                    continue
                fd_dir = f"{entry.path}/fd"
                try:
                    names = os.listdir(fd_dir)
                except OSError:  # exited, or not ours to read
                    continue
                for name in names:
                    try:
                        link = os.readlink(f"{fd_dir}/{name}")
                    except OSError:
                        continue
                    inode = targets.get(link)
                    # The first pid wins when several share a socket: procfs lists pids in
                    # ascending order, so that is usually the service's main process.
                    if inode is not None and inode not in found:
                        found[inode] = int(entry.name)
                if len(found) == len(wanted):
                    break
        return found

    def _process_info(self, pid: int) -> ProcessInfo:
        base = self._proc / str(pid)
        try:
            exe = os.readlink(base / "exe")
        except OSError:
            exe = ""
        exe = exe.removesuffix(" (deleted)")
        try:
            name = (base / "comm").read_text(encoding="utf-8", errors="replace").rstrip("\n")
        except OSError:
            name = ""
        return ProcessInfo(pid, exe, name)


class UserNames:
    """uid -> user name from <etc_root>/passwd, re-read only when the file's mtime changes."""

    def __init__(self, passwd: Path) -> None:
        self._path = passwd
        self._mtime = -1
        self._names: dict[int, str] = {}

    def name(self, uid: int) -> str:
        self._refresh()
        return self._names.get(uid, "")

    def _refresh(self) -> None:
        try:
            mtime = self._path.stat().st_mtime_ns
        except OSError:
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        names: dict[int, str] = {}
        try:
            text = self._path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) >= 3 and fields[2].isdigit():
                names.setdefault(int(fields[2]), fields[0])
        self._names = names
