"""The process source: process starts and exits (kernel cn_proc events, or /proc polling)."""

from .config import ProcessConfig
from .source import ProcessSource

__all__ = ["ProcessConfig", "ProcessSource"]
