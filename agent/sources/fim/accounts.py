"""User and group names from <etc_root>/passwd and group, and the homes of login users."""

from __future__ import annotations

import os
from pathlib import Path

# Shells that refuse an interactive login: their users cannot use authorized_keys.
_NO_LOGIN_SHELLS = frozenset({"nologin", "false", "sync", "halt", "shutdown"})


def _read_colon_file(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _id_names(rows: list[list[str]]) -> dict[int, str]:
    out: dict[int, str] = {}
    for row in rows:
        if len(row) >= 3 and row[2].isdigit():
            out.setdefault(int(row[2]), row[0])
    return out


class AccountNames:
    """uid/gid -> name, re-read when passwd or group changes (checked by stat on each lookup
    batch via `refresh()`, which is cheap next to the hashing it accompanies)."""

    def __init__(self, etc_root: Path) -> None:
        self._passwd = etc_root / "passwd"
        self._group = etc_root / "group"
        self._stamp: tuple[tuple[int, int], tuple[int, int]] | None = None
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}

    def refresh(self) -> None:
        stamp = (_stamp(self._passwd), _stamp(self._group))
        if stamp != self._stamp:
            self._stamp = stamp
            self._users = _id_names(_read_colon_file(self._passwd))
            self._groups = _id_names(_read_colon_file(self._group))

    def user(self, uid: int) -> str:
        return self._users.get(uid, "")

    def group(self, gid: int) -> str:
        return self._groups.get(gid, "")


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def authorized_keys_paths(etc_root: Path) -> list[str]:
    """<home>/.ssh/authorized_keys of every user with a login shell and a real home: an
    existing directory other than "/"."""
    out: list[str] = []
    for row in _read_colon_file(etc_root / "passwd"):
        if len(row) < 7:
            continue
        home, shell = row[5], row[6]
        if not home.startswith("/") or home.rstrip("/") == "":
            continue
        if shell and os.path.basename(shell) in _NO_LOGIN_SHELLS:
            continue
        if os.path.isdir(home):
            path = os.path.join(os.path.normpath(home), ".ssh", "authorized_keys")
            if path not in out:
                out.append(path)
    return out
