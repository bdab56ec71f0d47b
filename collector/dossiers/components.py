"""A system's components from what its agents report: the raw lists of dossier Part I.

DOMAIN.md §6.1 "Components" asks for a device list, the services, and the network zones with
their private and public addresses. `system_components` builds them from the events stored for
the agents of one system:

* the agents of a system are the agent ids among its assets, and every known agent the registry
  places in it (`system_of_agent`: host name, network, enrollment token);
* per agent, the LATEST `inventory` event gives one device (host name, OS, kernel,
  architecture, memory, interfaces with MACs and addresses);
* per agent, the `listen` / `listen_closed` socket events, replayed in row order, give the
  ports still listening: one service each;
* the interface addresses are split into private, public and other (neither private nor
  global, e.g. 100.64.0.0/10); loopback and link-local addresses are left out;
* an agent with no inventory stored, and a host name of the assets that no agent reports, are
  listed as missing rather than dropped.

What an agent cannot know (device model, location, purpose, whether it is a main network
device; a service's name, location and purpose) is left as None and named in `to_be_filled`.

The store pages events forward by row id only (no newest-first read), so each agent's events
are read once, forward, filtered by agent id, keeping the latest inventory and the socket
state. The work is bounded by `max_events` per agent: an agent with more events stored is read
up to that many (its oldest), and is listed in `truncated` so the caller knows its data may be
stale. Events removed by retention are gone: a port that has listened since before the
retention horizon is not seen (the agent reports a listener once, when it opens).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from canhgac.v1 import events_pb2
from collector.dossiers.model import RegistryError, normalize_hostname
from collector.storage.base import Store

PAGE = 1000
DEFAULT_MAX_EVENTS = 200_000

TO_BE_FILLED = "to be filled"
DEVICE_OPERATOR_FIELDS = ("model", "location", "purpose", "is_main_network_device")
SERVICE_OPERATOR_FIELDS = ("name", "location", "purpose")

# Vietnamese labels of the output's keys, printed in its header (dossier Part I wording).
VI_LABELS: dict[str, str] = {
    "devices": "Danh mục thiết bị",
    "services": "Danh mục dịch vụ",
    "ip_addresses": "Địa chỉ IP",
    "private": "Địa chỉ IP nội bộ",
    "public": "Địa chỉ IP công cộng",
    "other": "Địa chỉ IP khác (không nội bộ, không công cộng)",
    "networks": "Vùng mạng",
    "missing": "Chưa có dữ liệu kiểm kê",
    "hostname": "Tên máy",
    "model": "Chủng loại (model)",
    "location": "Vị trí lắp đặt",
    "purpose": "Mục đích sử dụng",
    "is_main_network_device": "Thiết bị mạng chính",
    "os": "Hệ điều hành",
    "host": "Máy chủ",
    "port": "Cổng",
    "transport": "Giao thức",
    "process": "Tiến trình",
    "name": "Tên dịch vụ",
    "to_be_filled": "Cán bộ vận hành cần bổ sung",
}


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str
    addresses: tuple[str, ...]
    up: bool


@dataclass(frozen=True)
class Device:
    """One host, from its agent's latest inventory."""

    agent_id: str
    hostname: str
    os_name: str
    os_version: str
    kernel: str
    architecture: str
    memory_bytes: int
    cpu_count: int
    interfaces: tuple[Interface, ...]
    inventory_ns: int
    model: str | None = None
    location: str | None = None
    purpose: str | None = None
    is_main_network_device: bool | None = None

    @property
    def os(self) -> str:
        return " ".join(p for p in (self.os_name, self.os_version) if p)


@dataclass(frozen=True)
class Service:
    """One listening port of one host."""

    agent_id: str
    host: str
    address: str
    port: int
    transport: str
    process: str
    executable: str
    user: str
    os: str
    since_ns: int
    name: str | None = None
    location: str | None = None
    purpose: str | None = None


@dataclass(frozen=True)
class IpAddress:
    address: str
    host: str
    interface: str
    agent_id: str


@dataclass(frozen=True)
class Missing:
    kind: str  # "agent" | "hostname"
    value: str
    reason: str


@dataclass
class Components:
    system_id: str
    devices: list[Device] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    private_ips: list[IpAddress] = field(default_factory=list)
    public_ips: list[IpAddress] = field(default_factory=list)
    other_ips: list[IpAddress] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    events_scanned: int = 0
    truncated: list[str] = field(default_factory=list)

    def networks(self) -> list[str]:
        """Private networks the interfaces are in, as /24 (IPv4) or /64 (IPv6) zones: the
        inventory has no prefix length, so these are a first guess for the operator."""
        nets = {
            ipaddress.ip_network(f"{ip.address}/{24 if ':' not in ip.address else 64}", False)
            for ip in self.private_ips
        }
        return [str(n) for n in sorted(nets, key=lambda n: (n.version, int(n.network_address)))]

    def to_dict(self, *, now: dt.datetime | None = None) -> dict[str, Any]:
        """The Part I lists, with English keys; the header carries the Vietnamese labels."""
        generated = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        return {
            "header": {
                "system_id": self.system_id,
                "generated_at": generated,
                "source": "agent inventory and listening sockets",
                "to_be_filled": TO_BE_FILLED,
                "events_scanned": self.events_scanned,
                "truncated_agents": list(self.truncated),
                "vi": dict(VI_LABELS),
            },
            "devices": [_device_dict(d) for d in self.devices],
            "services": [_service_dict(s) for s in self.services],
            "ip_addresses": {
                "private": [_ip_dict(i) for i in self.private_ips],
                "public": [_ip_dict(i) for i in self.public_ips],
                "other": [_ip_dict(i) for i in self.other_ips],
            },
            "networks": self.networks(),
            "missing": [
                {"kind": m.kind, "value": m.value, "reason": m.reason} for m in self.missing
            ],
        }


def _when(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="seconds")


def _device_dict(d: Device) -> dict[str, Any]:
    return {
        "hostname": d.hostname,
        "agent_id": d.agent_id,
        "os": d.os,
        "os_name": d.os_name,
        "os_version": d.os_version,
        "kernel": d.kernel,
        "architecture": d.architecture,
        "memory_bytes": d.memory_bytes,
        "cpu_count": d.cpu_count,
        "interfaces": [
            {"name": i.name, "mac": i.mac, "addresses": list(i.addresses), "up": i.up}
            for i in d.interfaces
        ],
        "inventory_at": _when(d.inventory_ns),
        "model": d.model,
        "location": d.location,
        "purpose": d.purpose,
        "is_main_network_device": d.is_main_network_device,
        "to_be_filled": [f for f in DEVICE_OPERATOR_FIELDS if getattr(d, f) is None],
    }


def _service_dict(s: Service) -> dict[str, Any]:
    return {
        "host": s.host,
        "agent_id": s.agent_id,
        "address": s.address,
        "port": s.port,
        "transport": s.transport,
        "process": s.process,
        "executable": s.executable,
        "user": s.user,
        "os": s.os,
        "listening_since": _when(s.since_ns),
        "name": s.name,
        "location": s.location,
        "purpose": s.purpose,
        "to_be_filled": [f for f in SERVICE_OPERATOR_FIELDS if getattr(s, f) is None],
    }


def _ip_dict(i: IpAddress) -> dict[str, Any]:
    return {"address": i.address, "host": i.host, "interface": i.interface, "agent_id": i.agent_id}


@dataclass
class _AgentScan:
    inventory: events_pb2.Event | None = None
    # (transport, local ip, port) -> the listen event still open.
    listening: dict[tuple[str, str, int], events_pb2.Event] = field(default_factory=dict)
    scanned: int = 0
    truncated: bool = False


def _scan_agent(store: Store, agent_id: str, max_events: int) -> _AgentScan:
    """One forward pass over the agent's events, at most `max_events` of them."""
    scan = _AgentScan()
    after = 0
    while scan.scanned < max_events:
        page = store.events(
            after_row=after, limit=min(PAGE, max_events - scan.scanned), agent_id=agent_id
        )
        if not page:
            return scan
        for stored in page:
            event = stored.event
            kind = event.WhichOneof("payload")
            if kind == "inventory":
                # Row order is arrival order; of two inventories, the later row is the newer.
                scan.inventory = event
            elif kind == "socket" and event.socket.direction == "listen":
                s = event.socket
                key = (s.transport, s.local_ip, s.local_port)
                if event.action == "listen":
                    scan.listening[key] = event
                elif event.action == "listen_closed":
                    scan.listening.pop(key, None)
        scan.scanned += len(page)
        after = page[-1].row_id
    # The bound is reached: there may be more (a page of one tells for certain).
    scan.truncated = bool(store.events(after_row=after, limit=1, agent_id=agent_id))
    return scan


def system_agents(store: Store, system_id: str) -> list[str]:
    """The agent ids of a system: listed in its assets, or placed in it by the registry."""
    assets = store.get_assets(system_id)
    if assets is None:
        raise RegistryError("no such system", location=system_id)
    found = set(assets.agents)
    for agent in store.list_agents():
        if agent.agent_id not in found and store.system_of_agent(agent.agent_id) == system_id:
            found.add(agent.agent_id)
    return sorted(found)


def _classify(address: str) -> tuple[str, str] | None:
    """("private" | "public" | "other", the address normalized), None for loopback/link-local
    and for what is no address."""
    try:
        ip = ipaddress.ip_interface(address.strip()).ip
    except ValueError:
        return None
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return None
    if ip.is_global:
        return "public", str(ip)
    if ip.is_private:
        return "private", str(ip)
    return "other", str(ip)


def _ip_order(i: IpAddress) -> tuple[int, int, str, str]:
    ip = ipaddress.ip_address(i.address)
    return ip.version, int(ip), i.host, i.interface


def system_components(
    store: Store, system_id: str, *, max_events: int = DEFAULT_MAX_EVENTS
) -> Components:
    """The components of one system from its agents' stored events (see the module doc).

    Raises RegistryError for an unknown system; ValueError for `max_events` below 1.
    """
    if max_events < 1:
        raise ValueError("max_events must be at least 1")
    assets = store.get_assets(system_id)
    if assets is None:
        raise RegistryError("no such system", location=system_id)
    out = Components(system_id=system_id)
    reported_hosts: set[str] = set()
    for agent_id in system_agents(store, system_id):
        scan = _scan_agent(store, agent_id, max_events)
        out.events_scanned += scan.scanned
        if scan.truncated:
            out.truncated.append(agent_id)
        record = store.get_agent(agent_id)
        if scan.inventory is None:
            reason = (
                "no inventory stored yet"
                if record is not None
                else "listed in the assets; this agent has never connected"
            )
            out.missing.append(Missing("agent", agent_id, reason))
            if record is not None and record.hostname:
                reported_hosts.add(normalize_hostname(record.hostname))
            hostname = record.hostname if record is not None else ""
            os_text = ""
        else:
            inv = scan.inventory.inventory
            hostname = inv.hostname or scan.inventory.host or (record.hostname if record else "")
            device = Device(
                agent_id=agent_id,
                hostname=hostname,
                os_name=inv.os_name,
                os_version=inv.os_version,
                kernel=inv.kernel,
                architecture=inv.architecture,
                memory_bytes=inv.memory_bytes,
                cpu_count=inv.cpu_count,
                interfaces=tuple(
                    Interface(i.name, i.mac, tuple(i.addresses), i.up) for i in inv.interfaces
                ),
                inventory_ns=scan.inventory.time_ns,
            )
            out.devices.append(device)
            os_text = device.os
            if hostname:
                reported_hosts.add(normalize_hostname(hostname))
            for iface in device.interfaces:
                for address in iface.addresses:
                    classified = _classify(address)
                    if classified is None:
                        continue
                    kind, text = classified
                    ip = IpAddress(text, hostname, iface.name, agent_id)
                    {"private": out.private_ips, "public": out.public_ips, "other": out.other_ips}[
                        kind
                    ].append(ip)
        for (transport, local_ip, port), event in sorted(scan.listening.items()):
            s = event.socket
            out.services.append(
                Service(
                    agent_id=agent_id,
                    host=hostname or event.host,
                    address=local_ip,
                    port=port,
                    transport=transport,
                    process=s.process_name,
                    executable=s.process_executable,
                    user=s.user,
                    os=os_text,
                    since_ns=event.time_ns,
                )
            )
    for name in assets.hostnames:
        if name not in reported_hosts:
            out.missing.append(Missing("hostname", name, "no agent reports this host name"))
    out.devices.sort(key=lambda d: (d.hostname, d.agent_id))
    out.services.sort(key=lambda s: (s.host, s.port, s.transport, s.address, s.agent_id))
    for ips in (out.private_ips, out.public_ips, out.other_ips):
        ips.sort(key=_ip_order)
    return out
