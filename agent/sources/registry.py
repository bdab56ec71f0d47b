"""Every agent source, registered by id. A test checks each Source subclass is listed here."""

from __future__ import annotations

from agent.netsensor.source import NetSensorSource
from agent.sources.agentstatus.source import AgentStatusSource
from agent.sources.authlog.source import AuthLogSource
from agent.sources.base import Source
from agent.sources.fim.source import FileIntegritySource
from agent.sources.inventory.source import InventorySource
from agent.sources.journald.source import JournaldAuthSource
from agent.sources.process.source import ProcessSource
from agent.sources.sockets.source import SocketSource

SOURCES: dict[str, type[Source]] = {
    AuthLogSource.source_id: AuthLogSource,
    AgentStatusSource.source_id: AgentStatusSource,
    JournaldAuthSource.source_id: JournaldAuthSource,
    ProcessSource.source_id: ProcessSource,
    FileIntegritySource.source_id: FileIntegritySource,
    SocketSource.source_id: SocketSource,
    InventorySource.source_id: InventorySource,
    NetSensorSource.source_id: NetSensorSource,
}
