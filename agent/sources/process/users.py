"""uid -> user name from <etc_root>/passwd, re-read when the file changes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

UserLookup = Callable[[int], str]

# How often (seconds) the file's mtime is checked; account changes are rare.
RECHECK_SECONDS = 5.0


class PasswdUsers:
    """Callable uid -> name ("" when unknown) backed by a passwd file.

    The file is parsed once and again only when its mtime or size changed, checked at most
    every RECHECK_SECONDS (by `monotonic`). NSS sources other than the file (LDAP, sssd) are
    not consulted: the agent must not block on the network per event.
    """

    def __init__(
        self,
        etc_root: Path = Path("/etc"),
        *,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.path = etc_root / "passwd"
        self._monotonic = monotonic or time.monotonic
        self._names: dict[int, str] = {}
        self._signature: tuple[int, int] | None = None
        self._checked_at: float | None = None

    def __call__(self, uid: int) -> str:
        now = self._monotonic()
        if self._checked_at is None or now - self._checked_at >= RECHECK_SECONDS:
            self._checked_at = now
            self._reload_if_changed()
        return self._names.get(uid, "")

    def _reload_if_changed(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            self._names, self._signature = {}, None
            return
        signature = (st.st_mtime_ns, st.st_size)
        if signature == self._signature:
            return
        self._signature = signature
        try:
            text = self.path.read_text("utf-8", "replace")
        except OSError:
            self._names = {}
            return
        self._names = parse_passwd(text)


def parse_passwd(text: str) -> dict[int, str]:
    """uid -> first name listed with it; malformed lines are skipped."""
    names: dict[int, str] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 3 or not parts[0] or line.startswith("#"):
            continue
        try:
            names.setdefault(int(parts[2]), parts[0])
        except ValueError:
            continue
    return names
