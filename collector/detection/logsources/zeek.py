"""Zeek's logs (http, smb_files, dce_rpc, kerberos, rdp, x509 ...) as Sigma `product: zeek`
log sources, on LogRecord events of format "zeek" (Zeek's dns.log is the dns mapping in
`collector.detection.pipeline`)."""

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
