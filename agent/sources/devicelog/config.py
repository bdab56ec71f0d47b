"""Configuration of the network-device syslog receiver (kept free of heavy imports: the agent's
configuration module imports it even when the source is off)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from canhgac.strictmodel import Field, StrictModel, field_validator

DEFAULT_PORT = 5514
Vendor = Literal["auto", "cisco", "fortigate", "huawei", "juniper", "generic"]


class ListenerConfig(StrictModel):
    """One socket to receive on: UDP (one message per datagram, RFC 5426) or TCP (RFC 6587
    octet counting or newline framing, told apart per message)."""

    transport: Literal["udp", "tcp"]
    # Devices are remote: every interface by default (a listener per address narrows it).
    address: str = "0.0.0.0"  # noqa: S104 - a receiver for remote devices, see above
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)  # 0: any free port (tests)

    @field_validator("address")
    @classmethod
    def _ip(cls, address: str) -> str:
        ipaddress.ip_address(address)
        return address


class SenderConfig(StrictModel):
    """Devices in `network` (an address or CIDR) and the parser their messages go to."""

    network: str
    vendor: Vendor = "auto"

    @field_validator("network")
    @classmethod
    def _network(cls, network: str) -> str:
        return str(ipaddress.ip_network(network, strict=False))


class DeviceLogConfig(StrictModel):
    """Configuration of the devicelog source (off by default: it opens ports)."""

    listeners: list[ListenerConfig] = Field(
        default_factory=lambda: [ListenerConfig(transport="udp"), ListenerConfig(transport="tcp")]
    )
    # Per-sender parser choice; the first network containing the sender wins.
    senders: list[SenderConfig] = Field(default_factory=list)
    # True: messages from an address in no `senders` network are dropped ("unknown_sender").
    only_listed_senders: bool = False
    # A longer message (a datagram, a TCP frame) is dropped and counted ("oversize").
    max_message_bytes: int = Field(default=8192, ge=480, le=65535)
    # Further TCP connections are closed at once and counted ("tcp_connection_limit").
    max_tcp_connections: int = Field(default=64, ge=1, le=10_000)
    # Messages per second a sender may send on average (bursts up to twice that); the excess
    # is dropped and counted ("rate_limited"). 0: no limit.
    rate_limit_per_sender: int = Field(default=2000, ge=0, le=1_000_000)
    # A TCP connection silent this long is closed.
    tcp_idle_timeout_s: int = Field(default=600, ge=1, le=86_400)

    @field_validator("listeners")
    @classmethod
    def _listeners(cls, listeners: list[ListenerConfig]) -> list[ListenerConfig]:
        keys = [(x.transport, x.address, x.port) for x in listeners if x.port]
        if len(set(keys)) != len(keys):
            raise ValueError("a listener is listed twice")
        return listeners
