"""Every agent source, registered by id. A test checks each Source subclass is listed here."""

from __future__ import annotations

from agent.netsensor.source import NetSensorSource
from agent.sources.agentstatus.source import AgentStatusSource
from agent.sources.auditd.source import AuditdSource
from agent.sources.authlog.source import AuthLogSource
from agent.sources.base import Source
from agent.sources.devicelog.source import DeviceLogSource
from agent.sources.fim.source import FileIntegritySource
from agent.sources.inventory.source import InventorySource
from agent.sources.journald.source import JournaldAuthSource
from agent.sources.process.source import ProcessSource
from agent.sources.sockets.source import SocketSource
from agent.sources.syslog.source import SyslogSource
from agent.sources.zeek.source import ZeekSource

SOURCES: dict[str, type[Source]] = {
    AuthLogSource.source_id: AuthLogSource,
    DeviceLogSource.source_id: DeviceLogSource,
    AuditdSource.source_id: AuditdSource,
    AgentStatusSource.source_id: AgentStatusSource,
    JournaldAuthSource.source_id: JournaldAuthSource,
    ProcessSource.source_id: ProcessSource,
    FileIntegritySource.source_id: FileIntegritySource,
    SocketSource.source_id: SocketSource,
    SyslogSource.source_id: SyslogSource,
    InventorySource.source_id: InventorySource,
    NetSensorSource.source_id: NetSensorSource,
    ZeekSource.source_id: ZeekSource,
}
