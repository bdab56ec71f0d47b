"""`service: auditd` Sigma rules on auditd records (the agent's auditd source) and, where they
observe the same thing, on our typed process and account events.

Every rule here is written for these tests in the shape of the public auditd rules; every
record is a hand-written line run through the agent's parser: line -> Event -> rule.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaTransformationError
from sigma.rule import SigmaRule

from agent.sources.auditd.parser import AuditdParser
from canhgac.errors import RuleError
from canhgac.fields import event_fields
from canhgac.v1 import events_pb2 as pb
from collector.detection.compiler import compile_rule
from collector.detection.index import RuleIndex, anchors
from collector.detection.pipeline import canhgac_pipeline
from tests.agent.sources.auditd import records as r

AUDITD = {"product": "linux", "service": "auditd"}


def sigma(detection: dict[str, Any]) -> SigmaRule:
    doc = {"title": "ours", "logsource": AUDITD, "detection": detection}
    parsed = SigmaCollection.from_yaml(yaml.safe_dump(doc)).rules[0]
    assert isinstance(parsed, SigmaRule)
    canhgac_pipeline().apply(parsed)
    return parsed


def rule(detection: dict[str, Any]) -> Any:
    return compile_rule(sigma(detection)).predicate


def record(line: str) -> pb.Event:
    ev = AuditdParser(agent_id="a", host="web1", clock_ns=lambda: 1).parse(line)
    assert isinstance(ev, pb.Event)
    return ev


def matches(predicate: Any, ev: pb.Event) -> bool:
    return bool(predicate(event_fields(ev)))


def process(*args: str, exe: str) -> pb.Event:
    return pb.Event(
        category="process",
        type="start",
        process=pb.ProcessEvent(
            pid=10, executable=exe, command_line=" ".join(args), args=list(args), name=args[0]
        ),
    )


def test_path_record_of_a_sensitive_file() -> None:
    p = rule({"s": {"type": "PATH", "name": ["/etc/shadow", "/etc/gshadow"]}, "condition": "s"})
    assert matches(p, record(r.PATH_SHADOW))
    assert not matches(p, record(r.PATH_CREATE_HEX))
    # The file's name in another record type is not a PATH record.
    assert not matches(p, record(r.AVC.replace('name="shadow"', 'name="/etc/shadow"')))


def test_path_created_under_a_directory_with_a_type_less_selection() -> None:
    p = rule(
        {
            "path": {"type": "PATH", "nametype": "CREATE"},
            "name": {"name|startswith": "/tmp/"},
            "condition": "path and name",
        }
    )
    assert matches(p, record(r.PATH_CREATE_HEX))  # the hex-encoded name, decoded
    assert not matches(p, record(r.PATH_SHADOW))


def test_syscall_name_and_hex_arguments() -> None:
    p = rule({"s": {"type": "SYSCALL", "SYSCALL": "syslog", "a0": [4, 5, 6]}, "condition": "s"})
    assert matches(p, record(r.SYSCALL_SYSLOG_MULTIKEY))
    assert not matches(p, record(r.SYSCALL_SYSLOG_MULTIKEY.replace(" a0=5 ", " a0=3 ")))
    assert not matches(p, record(r.SYSCALL_OPEN_SHADOW))
    # SYSCALL's a0 is the call's argument: a process whose argv[0] is "5" is not an answer.
    assert not matches(p, process("5", exe="/usr/bin/5"))


def test_key_and_program_of_a_syscall() -> None:
    p = rule(
        {
            "s": {"type": "SYSCALL", "key": "shadow_read"},
            "filter": {"exe|endswith": ["/passwd", "/sshd"]},
            "condition": "s and not filter",
        }
    )
    assert matches(p, record(r.SYSCALL_OPEN_SHADOW))
    assert not matches(p, record(r.SYSCALL_OPEN_SHADOW.replace("/python3.11", "/passwd")))
    assert not matches(p, record(r.CONFIG_CHANGE))  # same key, not a SYSCALL record


def test_key_alone_matches_the_records_that_carry_it() -> None:
    p = rule({"s": {"key": "shadow_read"}, "condition": "s"})
    assert matches(p, record(r.SYSCALL_OPEN_SHADOW))
    assert matches(p, record(r.CONFIG_CHANGE))
    assert not matches(p, record(r.SYSCALL_SYSLOG_MULTIKEY))


def test_service_stop_of_a_unit() -> None:
    p = rule({"s": {"type": "SERVICE_STOP", "unit": ["firewalld", "ufw"]}, "condition": "s"})
    assert matches(p, record(r.SERVICE_STOP))
    assert not matches(p, record(r.SERVICE_START))
    assert not matches(p, record(r.SERVICE_STOP.replace("unit=firewalld", "unit=cron")))


def test_several_types_and_lower_case_type() -> None:
    p = rule({"s": {"type": ["TTY", "user_tty"]}, "condition": "s"})
    assert matches(p, record(r.NODE_TTY))
    assert not matches(p, record(r.SYSCALL_OPEN_SHADOW))


def test_execve_answered_by_records_and_by_process_starts() -> None:
    p = rule({"s": {"type": "execve", "a0": "sh", "a2|contains": "base64"}, "condition": "s"})
    assert matches(p, record(r.EXECVE_HEX))
    assert matches(p, process("sh", "-c", "echo hi | base64", exe="/bin/sh"))
    assert not matches(p, process("sh", "-c", "echo hi", exe="/bin/sh"))
    assert not matches(p, record(r.EXECVE_SPLIT))


def test_type_less_argument_selection_with_keywords() -> None:
    p = rule(
        {
            "cmd": {"type": "EXECVE", "a0": "sh"},
            "arg": {"a1": "-c"},
            "kw": ["base64"],
            "condition": "cmd and arg and kw",
        }
    )
    # The keyword is searched in the raw line, where this argument is hex-encoded: no match.
    assert not matches(p, record(r.EXECVE_HEX))
    assert matches(
        p, record(r.EXECVE_HEX.replace("a2=6563686F2068656C6C6F207C20626173653634", 'a2="base64"'))
    )
    assert matches(p, process("sh", "-c", "base64 -d", exe="/bin/sh"))


def test_syscall_by_program_still_matches_process_starts() -> None:
    p = rule({"s": {"type": "SYSCALL", "exe|endswith": "/python3.11"}, "condition": "s"})
    assert matches(p, record(r.SYSCALL_OPEN_SHADOW))
    assert matches(p, process("python3.11", exe="/usr/bin/python3.11"))
    assert not matches(p, process("python3.12", exe="/usr/bin/python3.12"))
    assert not matches(p, record(r.PATH_SHADOW))


def test_add_user_records_and_account_events() -> None:
    p = rule({"s": {"type": "ADD_USER"}, "condition": "s"})
    created = pb.Event(
        category="iam", type="creation", action="user_created", auth=pb.AuthEvent(user="bob")
    )
    assert matches(p, record(r.ADD_USER_NEW))
    assert matches(p, created)
    assert not matches(p, record(r.USER_LOGIN_FAILED))
    with_field = rule({"s": {"type": "ADD_USER", "acct": "backup2"}, "condition": "s"})
    assert matches(with_field, record(r.ADD_USER_NEW))
    assert not matches(with_field, created)  # the account event has no `acct`


@pytest.mark.parametrize(
    ("detection", "error", "message"),
    [
        ({"s": {"type": "PATH", "LogonId": "x"}}, RuleError, "unknown field 'LogonId'"),
        ({"s": {"type|contains": "PATH"}}, SigmaTransformationError, "with modifiers"),
    ],
)
def test_refusals(detection: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        rule({**detection, "condition": "s"})


def test_record_rules_are_indexed_by_a_discriminating_field() -> None:
    shapes: list[dict[str, Any]] = [
        {"s": {"type": "PATH", "name": "/etc/shadow"}, "condition": "s"},
        {"s": {"type": "SYSCALL", "SYSCALL": "mknod"}, "condition": "s"},
        {"s": {"type": "SERVICE_STOP", "unit": "firewalld"}, "condition": "s"},
        {"s": {"key": "susp_activity"}, "condition": "s"},
        {"s": {"type": "EXECVE", "a0": "getcap"}, "condition": "s"},
    ]
    compiled = []
    for detection in shapes:
        parsed = sigma(detection)
        tree = parsed.detection.parsed_condition[0].parsed
        found = anchors(tree)
        assert found, detection
        assert all(a.field not in ("event.category", "event.type") for a in found)
        compiled.append((compile_rule(parsed).predicate, tree))
    index = RuleIndex(compiled, lambda c: anchors(c[1]))
    assert index.indexed == len(shapes)
    for line, expected in [(r.PATH_SHADOW, [0]), (r.SERVICE_STOP, [2]), (r.CONFIG_CHANGE, [])]:
        fields = event_fields(record(line))
        hits = [compiled.index(c) for c in index.candidates(fields)]
        assert [i for i in hits if compiled[i][0](fields)] == expected
        assert len(hits) <= 2, line  # not every rule for every record
