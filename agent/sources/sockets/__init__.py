"""The sockets source: listening ports and connections from /proc/net, attributed to processes."""

from .source import SocketConfig, SocketSource

__all__ = ["SocketConfig", "SocketSource"]
