"""A system's components (dossier Part I) from stored inventory and socket events, on every
backend, and the `components` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from canhgac.errors import CanhGacError
from canhgac.v1 import events_pb2
from collector import config as cfgmod
from collector.app import open_configured_store
from collector.dossiers.components import system_components
from collector.dossiers.components_cli import add_components_commands
from collector.dossiers.model import Assets, InformationSystem, RegistryError
from collector.storage.base import AgentRecord, Store
from tests.collector.storage import conftest as storage

backend = storage.backend
postgres_server = storage.postgres_server
postgres_dsn = storage.postgres_dsn
store = storage.store

T0 = 1_780_000_000_000_000_000
SEC = 1_000_000_000


def system(system_id: str) -> InformationSystem:
    return InformationSystem.model_validate(
        {
            "id": system_id,
            "name": f"Hệ thống {system_id}",
            "owner": {"name": "UBND tỉnh"},
            "operator": {"name": "Trung tâm CNTT&TT"},
            "system_type": "citizen_business_service",
            "info_classes": ["public"],
            "proposed_level": 3,
        }
    )


def inventory(
    agent_id: str, n: int, hostname: str, *, kernel: str = "6.1.0-18-amd64", **changes: Any
) -> events_pb2.Event:
    fields: dict[str, Any] = dict(
        hostname=hostname,
        os_name="Debian GNU/Linux",
        os_version="12",
        kernel=kernel,
        architecture="x86_64",
        memory_bytes=8 << 30,
        cpu_count=4,
        interfaces=[
            events_pb2.NetworkInterface(name="lo", addresses=["127.0.0.1", "::1"], up=True),
            events_pb2.NetworkInterface(
                name="eth0",
                mac="52:54:00:12:34:56",
                addresses=["10.10.1.5", "14.225.0.10", "fe80::1", "2402:800::5"],
                up=True,
            ),
            events_pb2.NetworkInterface(name="tailscale0", addresses=["100.64.0.7"], up=True),
        ],
        packages=[events_pb2.InstalledPackage(name="nginx", version="1.22.1")],
        users=[events_pb2.LocalUser(name="root", uid=0)],
    )
    fields.update(changes)
    payload = events_pb2.InventoryEvent(**fields)
    return events_pb2.Event(
        id=f"{agent_id}-inv-{n}",
        time_ns=T0 + n * SEC,
        agent_id=agent_id,
        host=hostname,
        category="host",
        type="info",
        action="inventory",
        source="inventory",
        inventory=payload,
    )


def socket(
    agent_id: str,
    n: int,
    port: int,
    *,
    action: str = "listen",
    transport: str = "tcp",
    ip: str = "0.0.0.0",
    process: str = "nginx",
) -> events_pb2.Event:
    return events_pb2.Event(
        id=f"{agent_id}-sock-{n}",
        time_ns=T0 + n * SEC,
        agent_id=agent_id,
        category="network",
        type="start" if action == "listen" else "end",
        action=action,
        source="sockets",
        socket=events_pb2.SocketEvent(
            transport=transport,
            local_ip=ip,
            local_port=port,
            state="LISTEN" if transport == "tcp" else "UNCONN",
            direction="listen",
            pid=100 + port,
            process_name=process,
            process_executable=f"/usr/sbin/{process}",
            user="root" if process != "nginx" else "www-data",
        ),
    )


def outbound(agent_id: str, n: int) -> events_pb2.Event:
    return events_pb2.Event(
        id=f"{agent_id}-out-{n}",
        time_ns=T0 + n * SEC,
        agent_id=agent_id,
        category="network",
        type="connection",
        action="connection_opened",
        socket=events_pb2.SocketEvent(
            transport="tcp",
            local_ip="10.10.1.5",
            local_port=40000,
            remote_port=443,
            direction="outbound",
        ),
    )


def populate(st: Store) -> None:
    """dvc-portal: web-01 (listed by agent id), db-01 (by host name), a listed agent that never
    connected, a connected agent with no inventory, a host name no agent reports. egov: other."""
    st.upsert_system(system("dvc-portal"))
    st.upsert_system(system("egov"))
    st.set_assets(
        "dvc-portal",
        Assets(
            agents=("agent-web", "agent-ghost", "agent-quiet"),
            hostnames=("db-01", "mail-01"),
        ),
    )
    st.set_assets("egov", Assets(agents=("agent-egov",)))
    st.upsert_agent(AgentRecord(agent_id="agent-web", hostname="web-01", first_seen_ns=T0))
    st.upsert_agent(AgentRecord(agent_id="agent-db", hostname="db-01", first_seen_ns=T0))
    st.upsert_agent(AgentRecord(agent_id="agent-quiet", hostname="quiet-01", first_seen_ns=T0))
    st.upsert_agent(AgentRecord(agent_id="agent-egov", hostname="egov-01", first_seen_ns=T0))
    st.store_batch(
        "agent-web",
        1,
        [
            inventory("agent-web", 1, "web-01", kernel="6.1.0-17-amd64"),
            socket("agent-web", 2, 22, process="sshd"),
            socket("agent-web", 3, 80),
            socket("agent-web", 4, 443),
            outbound("agent-web", 5),
        ],
        T0,
    )
    st.store_batch("agent-egov", 1, [inventory("agent-egov", 1, "egov-01")], T0)
    st.store_batch(
        "agent-web",
        2,
        [
            socket("agent-web", 10, 80, action="listen_closed"),
            socket("agent-web", 11, 123, transport="udp", process="chronyd"),
            inventory("agent-web", 12, "web-01"),  # the latest: a new kernel
        ],
        T0 + 20 * SEC,
    )
    st.store_batch(
        "agent-db",
        1,
        [
            inventory("agent-db", 1, "db-01", interfaces=[]),
            socket("agent-db", 2, 5432, ip="10.10.1.6", process="postgres"),
        ],
        T0,
    )
    st.store_batch("agent-quiet", 1, [outbound("agent-quiet", 1)], T0)


def test_components_of_a_system(store: Store) -> None:
    populate(store)
    c = system_components(store, "dvc-portal")

    assert [(d.hostname, d.agent_id) for d in c.devices] == [
        ("db-01", "agent-db"),
        ("web-01", "agent-web"),
    ]
    web = c.devices[1]
    assert web.kernel == "6.1.0-18-amd64"  # the latest inventory, not the first
    assert web.inventory_ns == T0 + 12 * SEC
    assert web.os == "Debian GNU/Linux 12"
    assert (web.architecture, web.memory_bytes, web.cpu_count) == ("x86_64", 8 << 30, 4)
    eth0 = next(i for i in web.interfaces if i.name == "eth0")
    assert eth0.mac == "52:54:00:12:34:56"
    assert "10.10.1.5" in eth0.addresses

    assert [(s.host, s.port, s.transport, s.process) for s in c.services] == [
        ("db-01", 5432, "tcp", "postgres"),
        ("web-01", 22, "tcp", "sshd"),
        ("web-01", 123, "udp", "chronyd"),
        ("web-01", 443, "tcp", "nginx"),  # port 80 was closed
    ]
    assert c.services[0].address == "10.10.1.6"
    assert c.services[1].os == "Debian GNU/Linux 12"
    assert c.services[3].executable == "/usr/sbin/nginx"

    assert [(i.address, i.host, i.interface) for i in c.private_ips] == [
        ("10.10.1.5", "web-01", "eth0")
    ]
    assert [i.address for i in c.public_ips] == ["14.225.0.10", "2402:800::5"]
    assert [i.address for i in c.other_ips] == ["100.64.0.7"]
    assert c.networks() == ["10.10.1.0/24"]

    assert [(m.kind, m.value) for m in c.missing] == [
        ("agent", "agent-ghost"),
        ("agent", "agent-quiet"),
        ("hostname", "mail-01"),
    ]
    assert "never connected" in c.missing[0].reason
    assert c.missing[1].reason == "no inventory stored yet"
    # egov's agent is not read; every event of the four dvc-portal agents is.
    assert c.events_scanned == 5 + 3 + 2 + 1
    assert c.truncated == []

    data = c.to_dict()
    assert data["header"]["vi"]["devices"] == "Danh mục thiết bị"
    device = data["devices"][1]
    assert device["model"] is None
    assert device["is_main_network_device"] is None
    assert device["to_be_filled"] == ["model", "location", "purpose", "is_main_network_device"]
    assert data["services"][0]["to_be_filled"] == ["name", "location", "purpose"]
    assert data["ip_addresses"]["public"][0] == {
        "address": "14.225.0.10",
        "host": "web-01",
        "interface": "eth0",
        "agent_id": "agent-web",
    }
    json.dumps(data)  # plain data all the way down


def test_the_scan_is_bounded_and_says_so(store: Store) -> None:
    populate(store)
    c = system_components(store, "dvc-portal", max_events=3)
    assert c.truncated == ["agent-web"]
    assert c.events_scanned == 3 + 2 + 1  # web-01 cut at 3; db-01 and the quiet agent whole
    web = next(d for d in c.devices if d.hostname == "web-01")
    assert web.kernel == "6.1.0-17-amd64"  # only the first inventory was reached
    assert c.to_dict()["header"]["truncated_agents"] == ["agent-web"]
    with pytest.raises(ValueError, match="at least 1"):
        system_components(store, "dvc-portal", max_events=0)


def test_a_system_without_agents_and_an_unknown_one(store: Store) -> None:
    store.upsert_system(system("empty"))
    c = system_components(store, "empty")
    assert (c.devices, c.services, c.missing, c.events_scanned) == ([], [], [], 0)
    with pytest.raises(RegistryError, match="no such system"):
        system_components(store, "ghost")


# --- the command ----------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    """The collector's main() with only this command registered (collector/cli.py registers
    it beside the others)."""
    parser = argparse.ArgumentParser(prog="canhgac-collector")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--config", "-c", type=Path, required=True)
        return sp

    add_components_commands(sub, with_config)
    ns = parser.parse_args(argv)
    try:
        rc: int = ns.fn(ns)
    except CanhGacError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return rc


def test_components_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\n")
    (tmp_path / "state").mkdir()
    worker = open_configured_store(cfgmod.load(config))
    worker.store.migrate()
    populate(worker.store)
    worker.store.close()

    assert main(["components", "dvc-portal", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    shown = yaml.safe_load(out)
    assert "Danh mục thiết bị" in out  # Vietnamese written as such, not escaped
    assert shown["header"]["system_id"] == "dvc-portal"
    assert [d["hostname"] for d in shown["devices"]] == ["db-01", "web-01"]
    assert [s["port"] for s in shown["services"]] == [5432, 22, 123, 443]
    assert [m["value"] for m in shown["missing"]] == ["agent-ghost", "agent-quiet", "mail-01"]

    assert main(["components", "dvc-portal", "--format", "json", "-c", str(config)]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["devices"] == shown["devices"]
    assert as_json["ip_addresses"]["private"][0]["address"] == "10.10.1.5"

    assert main(["components", "dvc-portal", "--max-events", "3", "-c", str(config)]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["header"]["truncated_agents"] == ["agent-web"]

    assert main(["components", "ghost", "-c", str(config)]) == 2
    assert "no such system" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["components", "dvc-portal", "--format", "xml", "-c", str(config)])
