"""The audit.log parser on hand-written records of every shape auditd writes."""

from __future__ import annotations

import pytest

from agent.sources.auditd.parser import AuditdParser, parse_record
from agent.sources.base import Skipped
from canhgac.fields import event_fields
from canhgac.v1 import events_pb2 as pb

from . import records as r

CLOCK_NS = 1_795_400_000_000_000_000


def parser() -> AuditdParser:
    return AuditdParser(agent_id="agent-1", host="web1", clock_ns=lambda: CLOCK_NS)


def fields_of(line: str) -> dict[str, str]:
    record = parse_record(line)
    assert not isinstance(record, Skipped)
    return record.fields


def test_syscall_record_with_enriched_part() -> None:
    ev = parser().parse(r.SYSCALL_OPEN_SHADOW)
    assert isinstance(ev, pb.Event)
    assert (ev.category, ev.type, ev.action) == ("process", "info", "syscall")
    assert ev.outcome == pb.OUTCOME_SUCCESS
    assert ev.time_ns == 1_795_350_000_250_000_000
    assert ev.created_ns == CLOCK_NS
    assert (ev.source, ev.host, ev.agent_id) == ("auditd", "web1", "agent-1")
    assert ev.original == r.SYSCALL_OPEN_SHADOW
    log = ev.log
    assert (log.format, log.name, log.program, log.pid) == ("auditd", "SYSCALL", "python3", 4188)
    f = log.fields
    assert (f["syscall"], f["SYSCALL"], f["ARCH"]) == ("257", "openat", "x86_64")
    assert (f["a0"], f["a1"]) == ("ffffff9c", "7ffc1a2b3000")  # call arguments stay hex
    assert (f["key"], f["exe"], f["uid"], f["UID"], f["AUID"]) == (
        "shadow_read",
        "/usr/bin/python3.11",
        "0",
        "root",
        "lan",
    )
    assert f["serial"] == "8811"


def test_record_fields_reach_the_rule_vocabulary() -> None:
    ev = parser().parse(r.PATH_SHADOW)
    assert isinstance(ev, pb.Event)
    flat = event_fields(ev)
    assert flat["canhgac.log.format"] == "auditd"
    assert flat["canhgac.log.name"] == "PATH"
    assert flat["canhgac.log.fields.name"] == "/etc/shadow"
    assert flat["canhgac.log.fields.nametype"] == "NORMAL"
    assert flat["canhgac.log.fields.OGID"] == "shadow"
    assert (flat["event.category"], flat["event.type"]) == ("file", "info")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (r.CWD_HEX, {"cwd": "/home/lan/my dir"}),
        (r.PROCTITLE_HEX, {"proctitle": "python3 -c print(open('/etc/shadow'))"}),
        (r.EXECVE_HEX, {"argc": "4", "a0": "sh", "a1": "-c", "a2": "echo hello | base64"}),
        (r.EXECVE_SPLIT, {"a0": "printf", "a1": "abcdefghijkl", "a1_len": "12"}),
        (r.PATH_CREATE_HEX, {"name": "/tmp/evil file", "nametype": "CREATE", "mode": "0100644"}),
        (r.USER_ACCT_HEX_ACCT, {"acct": "lan bo", "op": "PAM:accounting", "exe": "/usr/bin/sudo"}),
        (r.SYSCALL_SYSLOG_MULTIKEY, {"key": "clear_dmesg,disable", "a0": "5", "SYSCALL": "syslog"}),
        (r.NODE_TTY, {"data": "ls\r", "text": "tty", "comm": "bash"}),
    ],
)
def test_hex_encoded_values_are_decoded(line: str, expected: dict[str, str]) -> None:
    fields = fields_of(line)
    assert {k: fields.get(k) for k in expected} == expected


def test_null_and_question_mark_leave_the_field_out() -> None:
    assert "name" not in fields_of(r.PATH_NULL)
    assert "a3" not in fields_of(r.EXECVE_HEX)
    login = fields_of(r.USER_LOGIN_FAILED)
    assert "hostname" not in login
    assert login["addr"] == "203.0.113.9"


def test_numbers_that_look_like_hex_are_not_decoded() -> None:
    fields = fields_of(r.ADD_USER_OLD)
    assert fields["id"] == "1005"
    assert fields_of(r.PATH_SHADOW)["inode"] == "1311"


@pytest.mark.parametrize(
    ("line", "kind", "outcome", "expected"),
    [
        (
            r.SERVICE_STOP,
            ("process", "end", "service_stop"),
            pb.OUTCOME_SUCCESS,
            {"unit": "firewalld", "comm": "systemd", "pid": "1", "auid": "4294967295"},
        ),
        (
            r.SERVICE_START,
            ("process", "start", "service_start"),
            pb.OUTCOME_SUCCESS,
            {"unit": "firewalld"},
        ),
        (
            r.USER_LOGIN_FAILED,
            ("authentication", "start", "user_login"),
            pb.OUTCOME_FAILURE,
            {"op": "login", "acct": "root", "exe": "/usr/sbin/sshd", "terminal": "ssh"},
        ),
        (
            r.ADD_USER_OLD,
            ("iam", "creation", "add_user"),
            pb.OUTCOME_SUCCESS,
            {"op": "adding user", "exe": "/usr/sbin/useradd", "pid": "6001"},
        ),
        (
            r.ADD_USER_NEW,
            ("iam", "creation", "add_user"),
            pb.OUTCOME_SUCCESS,
            {"op": "add-user", "acct": "backup2"},
        ),
        (
            r.CONFIG_CHANGE,
            ("configuration", "change", "config_change"),
            pb.OUTCOME_SUCCESS,
            {"op": "remove_rule", "key": "shadow_read", "list": "4"},
        ),
        (
            r.DAEMON_END,
            ("process", "end", "daemon_end"),
            pb.OUTCOME_SUCCESS,
            {"op": "terminate"},
        ),
        (
            r.AVC,
            ("intrusion_detection", "denied", "avc"),
            pb.OUTCOME_UNSPECIFIED,
            {"text": "avc: denied { read } for", "comm": "httpd", "tclass": "file"},
        ),
        (
            r.EXECVE_HEX,
            ("process", "start", "execve"),
            pb.OUTCOME_UNSPECIFIED,
            {"a0": "sh"},
        ),
    ],
)
def test_record_kinds_and_user_space_messages(
    line: str, kind: tuple[str, str, str], outcome: int, expected: dict[str, str]
) -> None:
    ev = parser().parse(line)
    assert isinstance(ev, pb.Event)
    assert (ev.category, ev.type, ev.action) == kind
    assert ev.outcome == outcome
    assert {k: ev.log.fields.get(k) for k in expected} == expected


def test_comm_is_the_program_only_for_records_about_a_process() -> None:
    syscall, stop = parser().parse(r.SYSCALL_OPEN_SHADOW), parser().parse(r.SERVICE_STOP)
    assert isinstance(syscall, pb.Event)
    assert isinstance(stop, pb.Event)
    assert syscall.log.program == "python3"
    assert stop.log.program == ""  # systemd sent it; the unit is what stopped
    assert stop.log.pid == 1


def test_node_prefix_names_the_host_that_wrote_the_record() -> None:
    ev = parser().parse(r.NODE_TTY)
    assert isinstance(ev, pb.Event)
    assert (ev.log.hostname, ev.log.name, ev.category) == ("db1", "TTY", "session")
    assert ev.host == "web1"


def test_unknown_record_type_is_kept_as_a_host_record() -> None:
    ev = parser().parse("type=BPF msg=audit(1795350200.0:1): prog-id=75 op=LOAD")
    assert isinstance(ev, pb.Event)
    assert (ev.category, ev.type, ev.log.name) == ("host", "info", "BPF")
    assert dict(ev.log.fields) == {"prog-id": "75", "op": "LOAD", "serial": "1"}


def test_time_without_fraction_and_with_microseconds() -> None:
    a = parse_record("type=EOE msg=audit(1795350200:5): ")
    b = parse_record("type=EOE msg=audit(1795350200.000123:6):")
    assert not isinstance(a, Skipped)
    assert not isinstance(b, Skipped)
    assert a.time_ns == 1_795_350_200_000_000_000
    assert b.time_ns == 1_795_350_200_000_123_000
    assert (a.serial, b.serial) == ("5", "6")


def test_unterminated_quote_is_parsed_and_reported() -> None:
    problems: list[str] = []
    ev = parser().parse(r.UNTERMINATED, problems)
    assert isinstance(ev, pb.Event)
    assert problems == ["unterminated_quote"]
    assert ev.log.fields["cwd"] == "/root"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty_line"),
        ("   ", "empty_line"),
        ("Nov 22 12:00:01 web1 sshd[1]: Accepted password for lan", "not_audit_record"),
        ("type=SYSCALL arch=c000003e syscall=59", "not_audit_record"),
        ("type=SYSCALL msg=audit(notatime:1): arch=c000003e", "not_audit_record"),
        ("type=SYSCALL msg=audit(1795350200.1): missing serial", "not_audit_record"),
        ("garbage \x00\x01 binary", "not_audit_record"),
    ],
)
def test_lines_that_are_not_records_are_skipped_with_a_reason(line: str, reason: str) -> None:
    assert parser().parse(line) == Skipped(reason)


@pytest.mark.parametrize(
    "line",
    [
        # A time past what an int64 of nanoseconds holds (year 2262): a damaged line.
        'type=CWD msg=audit(99999999999.250:8811): cwd="/root"',
        # A pid that is digits, but not ASCII ones.
        "type=USER_CMD msg=audit(1795350000.250:8812): pid=\u00b9\u00b2 uid=0 msg='cmd=6C73'",
    ],
)
def test_damaged_records_are_skipped_or_read_never_raise(line: str) -> None:
    parsed = parser().parse(line)
    if isinstance(parsed, pb.Event):
        assert parsed.log.pid == 0
    else:
        assert parsed.reason == "bad_timestamp"
