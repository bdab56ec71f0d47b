"""The file-integrity source: a persistent baseline of sensitive files, watched by inotify."""

from .config import FimConfig
from .source import FileIntegritySource

__all__ = ["FileIntegritySource", "FimConfig"]
