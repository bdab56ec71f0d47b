"""The inventory source: OS, interfaces, packages and users of the host, sent when they change."""

from .source import InventoryConfig, InventorySource

__all__ = ["InventoryConfig", "InventorySource"]
