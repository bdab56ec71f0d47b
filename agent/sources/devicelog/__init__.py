"""The devicelog source: syslog from network devices (Cisco, FortiGate, Huawei, Juniper ...)
received over UDP and TCP, as LogRecord events.

Only the configuration is imported here (agent.config needs it even when the source is off);
the source itself is `agent.sources.devicelog.source.DeviceLogSource`.
"""

from .config import DeviceLogConfig, ListenerConfig, SenderConfig

__all__ = ["DeviceLogConfig", "ListenerConfig", "SenderConfig"]
