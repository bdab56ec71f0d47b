"""Authentication events from the systemd journal (for hosts without an auth.log)."""

from .config import JournaldConfig
from .source import JournaldAuthSource

__all__ = ["JournaldAuthSource", "JournaldConfig"]
