"""The field vocabulary: every payload kind onto its dotted paths, and FIELD_PATHS complete."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canhgac import fields
from canhgac.fields import (
    FIELD_PATHS,
    PAYLOAD_PATHS,
    event_fields,
    fields_reader,
    is_known_field,
)
from canhgac.v1 import events_pb2 as pb

T = 1_700_000_000_123_456_789


def header(**kw: Any) -> pb.Event:
    base: dict[str, Any] = {
        "id": "01EV",
        "time_ns": T,
        "agent_id": "agent-1",
        "host": "web1",
        "source": "authlog",
    }
    base.update(kw)
    return pb.Event(**base)


def test_header_fields() -> None:
    ev = header(
        category="authentication",
        type="start",
        action="ssh_login",
        outcome=pb.OUTCOME_FAILURE,
        original="sshd[1]: Failed password",
        created_ns=T + 5,
        labels={"env": "prod", "team": "ops"},
    )
    assert event_fields(ev) == {
        "event.id": "01EV",
        "@timestamp": T,
        "event.created": T + 5,
        "agent.id": "agent-1",
        "host.name": "web1",
        "event.category": "authentication",
        "event.type": "start",
        "event.action": "ssh_login",
        "event.outcome": "failure",
        "event.module": "authlog",
        "event.original": "sshd[1]: Failed password",
        "labels.env": "prod",
        "labels.team": "ops",
    }


@pytest.mark.parametrize(
    ("outcome", "text"),
    [
        (pb.OUTCOME_SUCCESS, "success"),
        (pb.OUTCOME_FAILURE, "failure"),
        (pb.OUTCOME_UNKNOWN, "unknown"),
        (pb.OUTCOME_UNSPECIFIED, None),
    ],
)
def test_outcome_names(outcome: pb.Outcome.ValueType, text: str | None) -> None:
    assert event_fields(pb.Event(outcome=outcome)).get("event.outcome") == text


def test_empty_event_has_no_fields() -> None:
    assert event_fields(pb.Event()) == {}


def test_process_start() -> None:
    ev = header(
        category="process",
        type="start",
        process=pb.ProcessEvent(
            pid=4242,
            ppid=1,
            executable="/usr/bin/curl",
            command_line="curl -s http://x",
            args=["curl", "-s", "http://x"],
            user="root",
            uid=0,
            cwd="/root",
            start_time_ns=T,
            parent_executable="/bin/bash",
            parent_command_line="bash -i",
        ),
    )
    f = event_fields(ev)
    assert {k: v for k, v in f.items() if not k.startswith(("event.", "agent.", "host.", "@"))} == {
        "process.pid": 4242,
        "process.parent.pid": 1,
        "process.executable": "/usr/bin/curl",
        "process.name": "curl",  # derived from the executable when the agent sent no name
        "process.command_line": "curl -s http://x",
        "process.args": ["curl", "-s", "http://x"],
        "canhgac.process.argv.0": "curl",  # argv by position, for auditd's a0, a1 ...
        "canhgac.process.argv.1": "-s",
        "canhgac.process.argv.2": "http://x",
        "user.name": "root",
        "user.id": 0,  # root's uid is 0: kept because the user name says it is set
        "process.working_directory": "/root",
        "process.start": T,
        "process.parent.executable": "/bin/bash",
        "process.parent.name": "bash",
        "process.parent.command_line": "bash -i",
    }
    assert "process.exit_code" not in f


def test_process_end_keeps_exit_code_zero_and_explicit_name() -> None:
    ev = header(
        type="end",
        process=pb.ProcessEvent(pid=7, name="kworker", exit_code=0, end_time_ns=T),
    )
    f = event_fields(ev)
    assert f["process.exit_code"] == 0
    assert f["process.name"] == "kworker"
    assert f["process.end"] == T
    assert "user.id" not in f


def test_auth() -> None:
    ev = header(
        auth=pb.AuthEvent(
            user="admin",
            source_ip="203.0.113.7",
            source_port=51230,
            method="password",
            process_name="sshd",
            process_pid=4242,
            target_user="root",
            command="/bin/systemctl restart nginx",
            tty="pts/0",
            cwd="/home/admin",
            reason="invalid user",
            user_invalid=True,
            group="wheel",
            uid=1001,
            gid=1001,
            repeat_count=3,
            destination_ip="192.0.2.1",
            destination_port=22,
        )
    )
    f = event_fields(ev)
    assert {k: v for k, v in f.items() if k not in event_fields(header())} == {
        "user.name": "admin",
        "source.ip": "203.0.113.7",
        "source.port": 51230,
        "destination.ip": "192.0.2.1",
        "destination.port": 22,
        "canhgac.auth.method": "password",
        "process.name": "sshd",
        "process.pid": 4242,
        "user.target.name": "root",
        "process.command_line": "/bin/systemctl restart nginx",
        "canhgac.auth.tty": "pts/0",
        "process.working_directory": "/home/admin",
        "event.reason": "invalid user",
        "canhgac.auth.user_invalid": True,
        "group.name": "wheel",
        "user.id": 1001,
        "group.id": 1001,
        "canhgac.auth.repeat_count": 3,
    }


def test_auth_valid_user_has_no_invalid_flag() -> None:
    f = event_fields(header(auth=pb.AuthEvent(user="root", source_ip="198.51.100.1")))
    assert "canhgac.auth.user_invalid" not in f
    assert f["source.ip"] == "198.51.100.1"


def test_file_modification_and_rename() -> None:
    ev = header(
        file=pb.FileEvent(
            path="/etc/passwd",
            old_path="/etc/passwd.tmp",
            sha256_old="aa" * 32,
            sha256_new="bb" * 32,
            mode_old=0o100644,
            mode_new=0o104755,
            uid_old=0,
            uid_new=1000,
            gid_old=0,
            gid_new=0,
            size=2048,
            mtime_ns=T,
            owner="bob",
            group="root",
            pid=99,
            process_executable="/usr/bin/vi",
        )
    )
    f = event_fields(ev)
    assert {k: v for k, v in f.items() if k.startswith(("file.", "process."))} == {
        "file.path": "/etc/passwd",
        "file.original.path": "/etc/passwd.tmp",
        "file.hash.sha256": "bb" * 32,
        "file.original.hash.sha256": "aa" * 32,
        "file.mode": "4755",
        "file.original.mode": "0644",
        "file.uid": 1000,
        "file.gid": 0,
        "file.original.uid": 0,
        "file.original.gid": 0,
        "file.size": 2048,
        "file.mtime": T,
        "file.owner": "bob",
        "file.group": "root",
        "process.pid": 99,
        "process.executable": "/usr/bin/vi",
    }


def test_new_file_has_no_original_state() -> None:
    f = event_fields(header(file=pb.FileEvent(path="/tmp/x", sha256_new="cc", mode_new=0o600)))
    assert not any(k.startswith("file.original.") for k in f)
    assert f["file.mode"] == "0600"
    assert "file.uid" not in f


@pytest.mark.parametrize(
    ("direction", "source", "destination"),
    [
        ("outbound", ("10.0.0.5", 40000), ("203.0.113.9", 443)),
        ("inbound", ("203.0.113.9", 40000), ("10.0.0.5", 22)),
    ],
)
def test_socket_direction_decides_source_and_destination(
    direction: str, source: tuple[str, int], destination: tuple[str, int]
) -> None:
    local = source if direction == "outbound" else destination
    remote = destination if direction == "outbound" else source
    ev = header(
        socket=pb.SocketEvent(
            transport="tcp",
            local_ip=local[0],
            local_port=local[1],
            remote_ip=remote[0],
            remote_port=remote[1],
            state="ESTABLISHED",
            direction=direction,
            pid=10,
            process_executable="/usr/sbin/sshd",
            process_name="sshd",
            user="root",
        )
    )
    f = event_fields(ev)
    assert (f["source.ip"], f["source.port"]) == source
    assert (f["destination.ip"], f["destination.port"]) == destination
    assert f["network.transport"] == "tcp"
    assert f["network.direction"] == direction
    assert f["canhgac.socket.state"] == "ESTABLISHED"
    assert f["process.name"] == "sshd"
    assert f["user.name"] == "root"


def test_listening_socket_is_the_destination() -> None:
    ev = header(socket=pb.SocketEvent(local_ip="0.0.0.0", local_port=4444, direction="listen"))
    f = event_fields(ev)
    assert f["destination.ip"] == "0.0.0.0"
    assert f["destination.port"] == 4444
    assert "source.ip" not in f


def test_flow() -> None:
    ev = header(
        flow=pb.FlowEvent(
            transport="tcp",
            src_ip="203.0.113.7",
            src_port=51000,
            dst_ip="10.0.0.5",
            dst_port=22,
            direction="inbound",
            packets_to_server=10,
            packets_to_client=8,
            bytes_to_server=1000,
            bytes_to_client=5000,
            tcp_flags=2 | 16 | 1,
            first_seen_ns=T,
            last_seen_ns=T + 10,
            end_reason="fin",
            interface="eth0",
            ip_protocol=6,
            server_name="example.org",
        )
    )
    f = event_fields(ev)
    assert {k: v for k, v in f.items() if k not in event_fields(header())} == {
        "network.transport": "tcp",
        "source.ip": "203.0.113.7",
        "source.port": 51000,
        "destination.ip": "10.0.0.5",
        "destination.port": 22,
        "network.direction": "inbound",
        "source.packets": 10,
        "destination.packets": 8,
        "source.bytes": 1000,
        "destination.bytes": 5000,
        "network.packets": 18,
        "network.bytes": 6000,
        "canhgac.flow.tcp_flags": ["fin", "syn", "ack"],
        "event.start": T,
        "event.end": T + 10,
        "canhgac.flow.end_reason": "fin",
        "observer.ingress.interface.name": "eth0",
        "network.iana_number": "6",
        "destination.domain": "example.org",
    }


def test_dns_response() -> None:
    ev = header(
        dns=pb.DnsEvent(
            query_name="evil.example",
            query_type="A",
            rcode="NOERROR",
            answers=[
                pb.DnsAnswer(name="evil.example", type="A", data="192.0.2.66", ttl=60),
                pb.DnsAnswer(name="evil.example", type="A", data="192.0.2.67", ttl=60),
            ],
            query_length=12,
            is_response=True,
            transaction_id=4711,
            client_ip="10.0.0.5",
            client_port=53000,
            server_ip="10.0.0.1",
            server_port=53,
            transport="udp",
        )
    )
    f = event_fields(ev)
    assert {k: v for k, v in f.items() if k not in event_fields(header())} == {
        "dns.question.name": "evil.example",
        "dns.question.type": "A",
        "dns.response_code": "NOERROR",
        "dns.answers.data": ["192.0.2.66", "192.0.2.67"],
        "dns.answers.name": ["evil.example", "evil.example"],
        "dns.answers.type": ["A", "A"],
        "canhgac.dns.question.length": 12,
        "dns.type": "answer",
        "dns.id": "4711",
        "source.ip": "10.0.0.5",
        "source.port": 53000,
        "destination.ip": "10.0.0.1",
        "destination.port": 53,
        "network.transport": "udp",
    }


def test_dns_query_without_answers() -> None:
    f = event_fields(header(dns=pb.DnsEvent(query_name="a.example")))
    assert f["dns.type"] == "query"
    assert "dns.answers.data" not in f


def test_connection_attempts_by_source() -> None:
    ev = header(
        connection_attempts=pb.ConnectionAttempts(
            scope="source",
            ip="203.0.113.7",
            window_start_ns=T,
            window_end_ns=T + 60,
            syn_without_handshake=900,
            handshakes_completed=3,
            distinct_dst_ports=850,
            distinct_dst_hosts=2,
            distinct_src_hosts=1,
            rst_replies=880,
            icmp_unreachable=4,
            probes_by_flags={"syn": 900, "xmas": 5, "fin": 0},
            sample_ports=[22, 80, 443],
            interface="eth0",
        )
    )
    f = event_fields(ev)
    assert {k: v for k, v in f.items() if k not in event_fields(header())} == {
        "canhgac.conn.scope": "source",
        "canhgac.conn.ip": "203.0.113.7",
        "source.ip": "203.0.113.7",
        "event.start": T,
        "event.end": T + 60,
        "canhgac.conn.syn_without_handshake": 900,
        "canhgac.conn.handshakes_completed": 3,
        "canhgac.conn.distinct_dst_ports": 850,
        "canhgac.conn.distinct_dst_hosts": 2,
        "canhgac.conn.distinct_src_hosts": 1,
        "canhgac.conn.rst_replies": 880,
        "canhgac.conn.icmp_unreachable": 4,
        "canhgac.conn.probe_flags": ["syn", "xmas"],
        "canhgac.conn.probes.syn": 900,
        "canhgac.conn.probes.xmas": 5,
        "canhgac.conn.sample_ports": ["22", "80", "443"],
        "observer.ingress.interface.name": "eth0",
    }


def test_connection_attempts_by_destination() -> None:
    ev = header(connection_attempts=pb.ConnectionAttempts(scope="destination", ip="10.0.0.5"))
    f = event_fields(ev)
    assert f["destination.ip"] == "10.0.0.5"
    assert "source.ip" not in f


def test_inventory() -> None:
    ev = header(
        inventory=pb.InventoryEvent(
            hostname="web1.local",
            os_name="Ubuntu",
            os_version="24.04",
            kernel="6.8.0",
            architecture="x86_64",
            interfaces=[
                pb.NetworkInterface(name="eth0", mac="52:54:00:aa:bb:cc", addresses=["10.0.0.5"]),
                pb.NetworkInterface(name="lo", addresses=["127.0.0.1", "::1"]),
            ],
            packages=[pb.InstalledPackage(name="openssh-server", version="9.6")],
            users=[pb.LocalUser(name="root"), pb.LocalUser(name="admin", uid=1000)],
            memory_bytes=8 << 30,
            cpu_count=4,
            boot_time_ns=T,
        )
    )
    f = event_fields(ev)
    assert {k: v for k, v in f.items() if k not in event_fields(header())} == {
        "host.hostname": "web1.local",
        "host.os.name": "Ubuntu",
        "host.os.version": "24.04",
        "host.os.kernel": "6.8.0",
        "host.architecture": "x86_64",
        "host.ip": ["10.0.0.5", "127.0.0.1", "::1"],
        "host.mac": ["52:54:00:aa:bb:cc"],
        "canhgac.inventory.package_count": 1,
        "canhgac.inventory.user_names": ["root", "admin"],
        "canhgac.inventory.memory_bytes": 8 << 30,
        "canhgac.inventory.cpu_count": 4,
        "host.boot.time": T,
    }


def test_agent_status() -> None:
    ev = header(
        agent_status=pb.AgentStatus(
            version="0.1.0",
            rss_bytes=50_000_000,
            cpu_percent=1.5,
            spool_events=10,
            spool_bytes=4096,
            drops=[pb.DropCount(source="fim", reason="queue_full", count=3)],
            sources=[
                pb.SourceState(source="authlog", state="running"),
                pb.SourceState(source="fim", state="unavailable"),
            ],
            started_ns=T,
            events_total=1234,
        )
    )
    f = event_fields(ev)
    assert {k: v for k, v in f.items() if k not in event_fields(header())} == {
        "agent.version": "0.1.0",
        "canhgac.agent.rss_bytes": 50_000_000,
        "canhgac.agent.cpu_percent": 1.5,
        "canhgac.agent.spool_events": 10,
        "canhgac.agent.spool_bytes": 4096,
        "canhgac.agent.dropped_total": 3,
        "canhgac.agent.sources_down": ["fim"],
        "canhgac.agent.started": T,
        "canhgac.agent.events_total": 1234,
    }


def _full_events() -> list[pb.Event]:
    """Events with every field set, in every variant that changes which paths appear."""
    every = {
        "process": pb.ProcessEvent(
            pid=1,
            ppid=1,
            executable="/a",
            command_line="a",
            user="u",
            uid=1,
            args=["a"] * fields.ARGV_POSITIONS,
            cwd="/",
            start_time_ns=1,
            parent_executable="/b",
            parent_command_line="b",
            exit_code=1,
            end_time_ns=1,
            name="a",
        ),
        "auth": pb.AuthEvent(
            user="u",
            source_ip="1.1.1.1",
            source_port=1,
            method="m",
            process_name="p",
            process_pid=1,
            target_user="t",
            command="c",
            tty="t",
            cwd="/",
            reason="r",
            user_invalid=True,
            group="g",
            uid=1,
            gid=1,
            repeat_count=2,
            destination_ip="2.2.2.2",
            destination_port=2,
        ),
        "file": pb.FileEvent(
            path="/a",
            old_path="/b",
            sha256_old="a",
            sha256_new="b",
            mode_old=1,
            mode_new=1,
            uid_old=1,
            uid_new=1,
            gid_old=1,
            gid_new=1,
            size=1,
            mtime_ns=1,
            owner="o",
            group="g",
            pid=1,
            process_executable="/p",
        ),
        "socket": pb.SocketEvent(
            transport="tcp",
            local_ip="1.1.1.1",
            local_port=1,
            remote_ip="2.2.2.2",
            remote_port=2,
            state="s",
            direction="outbound",
            pid=1,
            process_executable="/p",
            process_name="p",
            user="u",
        ),
        "flow": pb.FlowEvent(
            transport="tcp",
            src_ip="1.1.1.1",
            src_port=1,
            dst_ip="2.2.2.2",
            dst_port=2,
            direction="inbound",
            packets_to_server=1,
            packets_to_client=1,
            bytes_to_server=1,
            bytes_to_client=1,
            tcp_flags=255,
            first_seen_ns=1,
            last_seen_ns=1,
            end_reason="fin",
            interface="eth0",
            ip_protocol=6,
            server_name="s",
        ),
        "dns": pb.DnsEvent(
            query_name="q",
            query_type="A",
            rcode="NOERROR",
            answers=[pb.DnsAnswer(name="q", type="A", data="1.1.1.1")],
            query_length=1,
            is_response=True,
            transaction_id=1,
            client_ip="1.1.1.1",
            client_port=1,
            server_ip="2.2.2.2",
            server_port=53,
            transport="udp",
        ),
        "connection_attempts": pb.ConnectionAttempts(
            scope="source",
            ip="1.1.1.1",
            window_start_ns=1,
            window_end_ns=2,
            syn_without_handshake=1,
            handshakes_completed=1,
            distinct_dst_ports=1,
            distinct_dst_hosts=1,
            distinct_src_hosts=1,
            rst_replies=1,
            icmp_unreachable=1,
            probes_by_flags={k: 1 for k in ("syn", "fin", "null", "xmas", "ack")},
            sample_ports=[1],
            interface="eth0",
        ),
        "inventory": pb.InventoryEvent(
            hostname="h",
            os_name="o",
            os_version="v",
            kernel="k",
            architecture="a",
            interfaces=[pb.NetworkInterface(name="e", mac="m", addresses=["1.1.1.1"])],
            packages=[pb.InstalledPackage(name="p")],
            users=[pb.LocalUser(name="u")],
            memory_bytes=1,
            cpu_count=1,
            boot_time_ns=1,
        ),
        "agent_status": pb.AgentStatus(
            version="v",
            rss_bytes=1,
            cpu_percent=1.0,
            spool_events=1,
            spool_bytes=1,
            drops=[pb.DropCount(count=1)],
            sources=[pb.SourceState(source="s", state="failed")],
            started_ns=1,
            events_total=1,
        ),
        "log": pb.LogRecord(
            format="fortigate",
            name="event",
            program="p",
            pid=1,
            message="m",
            hostname="fw1",
            facility="local7",
            severity="notice",
            vendor="fortinet",
            product="fortigate",
            sender_ip="1.1.1.1",
            fields={"action": "Add", "id.orig_h": "1.1.1.1"},
        ),
    }
    events = [header(**{kind: payload}) for kind, payload in every.items()]
    listen = pb.SocketEvent(local_ip="1.1.1.1", local_port=1, direction="listen")
    events.append(header(socket=listen))
    events.append(header(connection_attempts=pb.ConnectionAttempts(scope="destination", ip="x")))
    return events


def test_every_produced_path_is_documented() -> None:
    for ev in _full_events():
        undocumented = {k for k in event_fields(ev) if not is_known_field(k)}
        assert not undocumented, (ev.WhichOneof("payload"), undocumented)


def test_every_documented_payload_path_is_produced() -> None:
    produced: dict[str, set[str]] = {}
    for ev in _full_events():
        kind = ev.WhichOneof("payload")
        assert kind is not None
        produced.setdefault(kind, set()).update(event_fields(ev))
    for payload, paths in PAYLOAD_PATHS.items():
        assert paths <= produced[payload], (payload, paths - produced[payload])


def test_every_oneof_member_has_a_mapping() -> None:
    members = {f.name for f in pb.Event.DESCRIPTOR.oneofs_by_name["payload"].fields}
    assert members == set(PAYLOAD_PATHS)


def test_is_known_field() -> None:
    assert is_known_field("process.executable")
    assert is_known_field("labels.anything")
    assert not is_known_field("labels.")
    assert not is_known_field("Image")
    assert fields.REPEAT_COUNT_FIELD in FIELD_PATHS


def test_a_new_account_with_id_zero_has_user_id_zero_but_a_login_has_none() -> None:
    created = pb.Event(
        category="iam",
        action="user_created",
        outcome=pb.OUTCOME_SUCCESS,
        auth=pb.AuthEvent(user="toor", uid=0),
    )
    assert event_fields(created)["user.id"] == 0
    login = pb.Event(
        category="authentication",
        action="ssh_login",
        outcome=pb.OUTCOME_SUCCESS,
        auth=pb.AuthEvent(user="alice"),
    )
    assert "user.id" not in event_fields(login)
    failed = pb.Event(
        category="iam",
        action="user_created",
        outcome=pb.OUTCOME_FAILURE,
        auth=pb.AuthEvent(user="x"),
    )
    assert "user.id" not in event_fields(failed)


# --- fields_reader: only the wanted paths, with event_fields' values ---------------------------


def _reader_events() -> list[pb.Event]:
    """The full events, plus the variants where a derived value depends on other fields."""
    events = _full_events()
    events.append(
        header(
            category="process",
            labels={"k": "v"},
            process=pb.ProcessEvent(
                executable="/usr/bin/curl",
                parent_executable="/bin/sh",
                command_line="curl x",
                args=["curl", "", "x"],
            ),
        )
    )
    events.append(header(type="end", outcome=pb.OUTCOME_SUCCESS, process=pb.ProcessEvent(pid=2)))
    events.append(header(type="end", outcome=pb.OUTCOME_UNKNOWN, process=pb.ProcessEvent(pid=3)))
    events.append(header(process=pb.ProcessEvent(executable="/usr/bin/")))
    events.append(header(process=pb.ProcessEvent(user="root")))
    for action, payload in (
        ("user_created", pb.AuthEvent(user="toor", uid=0)),
        ("group_created", pb.AuthEvent(group="wheel2", gid=0)),
    ):
        events.append(header(action=action, outcome=pb.OUTCOME_SUCCESS, auth=payload))
    events.append(header(file=pb.FileEvent(path="/x", sha256_old="a", owner="root")))
    events.append(header(outcome=pb.OUTCOME_FAILURE))
    return events


WANTABLE = sorted(FIELD_PATHS | {"labels.k", "labels.other", "canhgac.log.fields.action"})


@pytest.mark.parametrize("path", WANTABLE)
def test_a_reader_of_one_path_gives_event_fields_value_for_it(path: str) -> None:
    read = fields_reader({path})
    for ev in _reader_events():
        full = event_fields(ev)
        narrow = read(ev)
        assert narrow.get(path) == full.get(path), (path, ev)
        # Whatever else it computed has the same value as in the full fields.
        assert {k: full.get(k) for k in narrow} == narrow


@settings(max_examples=150, deadline=None)
@given(st.sets(st.sampled_from(WANTABLE), max_size=12))
def test_a_reader_of_any_paths_agrees_with_event_fields(wanted: set[str]) -> None:
    read = fields_reader(wanted)
    for ev in _reader_events():
        full = event_fields(ev)
        narrow = read(ev)
        assert {k: v for k, v in full.items() if k in wanted} == {
            k: v for k, v in narrow.items() if k in wanted
        }
        assert {k: full.get(k) for k in narrow} == narrow


def test_a_reader_of_every_path_is_event_fields() -> None:
    read = fields_reader(WANTABLE)
    for ev in _reader_events():
        assert read(ev) == event_fields(ev)


def test_a_reader_of_nothing_reads_nothing() -> None:
    assert fields_reader(())(_reader_events()[0]) == {}


def test_log_record_fields_keep_their_own_names() -> None:
    record = pb.LogRecord(
        format="zeek", name="http", fields={"uri": "/x", "id.orig_h": "", "m": "GET"}
    )
    ev = pb.Event(id="e", category="network", log=record)
    fields = event_fields(ev)
    assert fields["canhgac.log.fields.uri"] == "/x"
    assert fields["canhgac.log.fields.m"] == "GET"
    assert "canhgac.log.fields.id.orig_h" not in fields  # empty values are absent, as elsewhere
    assert is_known_field("canhgac.log.fields.uri")
    assert not is_known_field("canhgac.log.fields.")
    # a reader asked for one record field reads them all, and nothing else of the payload
    read = fields_reader(["canhgac.log.fields.uri"])(ev)
    assert read == {"canhgac.log.fields.uri": "/x", "canhgac.log.fields.m": "GET"}
    assert fields_reader(["canhgac.log.name"])(ev) == {"canhgac.log.name": "http"}
