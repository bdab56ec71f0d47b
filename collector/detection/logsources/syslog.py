"""Services that write to the host's syslog (cron, vsftpd, clamav, guacamole ...) as Sigma
`product: linux, service: <name>` log sources, on LogRecord events of format "syslog"."""

from __future__ import annotations

from typing import Final

from sigma.processing.pipeline import ProcessingItem

from collector.detection.logsources.base import LogsourceMapping

# Sigma `product:` values these log sources answer.
PRODUCTS: Final[frozenset[str]] = frozenset()

LOGSOURCES: Final[tuple[LogsourceMapping, ...]] = ()


def processing_items() -> list[ProcessingItem]:
    """Transformations of their own these log sources need, applied before the field mapping."""
    return []
