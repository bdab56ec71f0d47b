"""Every agent source, registered by id. A test checks each Source subclass is listed here."""

from __future__ import annotations

from agent.sources.authlog.source import AuthLogSource
from agent.sources.base import Source

SOURCES: dict[str, type[Source]] = {
    AuthLogSource.source_id: AuthLogSource,
}
