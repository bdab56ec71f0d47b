"""The Zeek log source: Zeek's logs (JSON or TSV) on a sensor host, as LogRecord events."""

from .config import ZeekConfig
from .source import ZeekSource

__all__ = ["ZeekConfig", "ZeekSource"]
