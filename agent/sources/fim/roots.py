"""Which paths the source tracks: configured paths resolved to canonical roots, plus scope."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .accounts import authorized_keys_paths
from .config import FimConfig


def canonical(path: str) -> str:
    """The path events are reported under: symlinks in its parents resolved (/lib/systemd ->
    /usr/lib/systemd), and the path itself resolved only when it is a directory, so a
    watched file replaced by a symlink is still seen as that file."""
    if os.path.isdir(path):
        return os.path.realpath(path)
    parent, name = os.path.split(os.path.normpath(path))
    return os.path.join(os.path.realpath(parent), name)


def configured_roots(config: FimConfig, etc_root: Path) -> list[str]:
    """The canonical roots, deduplicated, without roots inside another directory root."""
    wanted = [*config.paths, *config.web_roots]
    if config.home_authorized_keys:
        wanted.extend(authorized_keys_paths(etc_root))
    roots = sorted({canonical(p) for p in wanted})
    dirs = [r for r in roots if os.path.isdir(r)]
    return [r for r in roots if not any(is_under(r, d) and r != d for d in dirs)]


def is_under(path: str, root: str) -> bool:
    """True if `path` is `root` or inside it."""
    return path == root or path.startswith(root.rstrip("/") + "/")


class Scope:
    """Answers "is this path tracked?": under a root and not excluded by a glob."""

    def __init__(self, roots: Sequence[str], exclude: Iterable[str]) -> None:
        self.roots = list(roots)
        self._exclude = list(exclude)

    def root_of(self, path: str) -> str | None:
        for root in self.roots:
            if is_under(path, root):
                return root
        return None

    def excluded(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, glob) for glob in self._exclude)

    def tracks(self, path: str) -> bool:
        return self.root_of(path) is not None and not self.excluded(path)
